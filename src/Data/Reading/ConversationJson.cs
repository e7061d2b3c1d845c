using System.Text.Json;
using System.Text.Json.Nodes;

namespace Qwen35.Data;

/// <summary>
/// The trainer's own row schema (JSON object per conversation) to and from <see cref="Conversation"/>:
/// <c>{"messages":[{"role","content","train"?,"train_detail"?,"reasoning_content"?,"tool_calls"?}], "category"?, "id"?, ...}</c>.
/// Every other key of the row is kept as metadata.
/// </summary>
public static class ConversationJson
{
    static readonly HashSet<string> KnownRoles = [Roles.System, Roles.User, Roles.Assistant, Roles.Tool];

    /// <summary>Parses a row in the messages schema; throws <see cref="RowFieldException"/> naming the field.</summary>
    public static Conversation Parse(JsonObject row, TrainDetailEnd end = TrainDetailEnd.Exclusive)
    {
        if (!row.TryGetPropertyValue("messages", out var messagesNode) || messagesNode is null)
            throw new RowFieldException("messages", "missing");
        var messages = ParseMessages(messagesNode, "messages", end);
        var category = OptionalString(row, "category");
        var id = OptionalId(row, "id");
        return new Conversation(messages, category, id, Metadata(row, "messages", "category", "id"));
    }

    public static IReadOnlyList<ChatMessage> ParseMessages(JsonNode node, string field, TrainDetailEnd end = TrainDetailEnd.Exclusive)
    {
        if (node is not JsonArray array) throw new RowFieldException(field, $"expected a list of messages, got {Kind(node)}");
        if (array.Count == 0) throw new RowFieldException(field, "empty list of messages");
        var list = new List<ChatMessage>(array.Count);
        for (var i = 0; i < array.Count; i++) list.Add(ParseMessage(array[i], $"{field}[{i}]", end));
        return list;
    }

    public static ChatMessage ParseMessage(JsonNode? node, string field, TrainDetailEnd end = TrainDetailEnd.Exclusive)
    {
        if (node is not JsonObject m) throw new RowFieldException(field, $"expected an object, got {Kind(node)}");
        var role = m["role"] is JsonValue rv && rv.GetValueKind() == JsonValueKind.String ? rv.GetValue<string>()
            : throw new RowFieldException($"{field}.role", m.ContainsKey("role") ? "not a string" : "missing");
        if (!KnownRoles.Contains(role))
            throw new RowFieldException($"{field}.role", $"unknown role '{role}' (expected system, user, assistant or tool)");
        var train = OptionalBool(m, "train", field);
        var reasoning = m["reasoning_content"] switch
        {
            null => null,
            JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
            var other => throw new RowFieldException($"{field}.reasoning_content", $"expected a string, got {Kind(other)}"),
        };
        var toolCalls = m["tool_calls"] is { } tc ? ParseToolCalls(tc, $"{field}.tool_calls") : null;

        ChatMessage message;
        switch (m["content"])
        {
            case null:
                message = new ChatMessage(role, null, train, null, reasoning, toolCalls);
                break;
            case JsonValue v when v.GetValueKind() == JsonValueKind.String:
                message = new ChatMessage(role, v.GetValue<string>(), train, null, reasoning, toolCalls);
                break;
            case JsonArray parts:
                if (m.ContainsKey("train_detail") && m["train_detail"] is not null)
                    throw new RowFieldException($"{field}.train_detail", "give either content parts or train_detail, not both");
                message = ChatMessage.FromParts(role, ParseParts(parts, $"{field}.content"), train, reasoning) with { ToolCalls = toolCalls };
                break;
            case var other:
                throw new RowFieldException($"{field}.content", $"expected a string or a list of text parts, got {Kind(other)}");
        }
        if (m["train_detail"] is JsonNode detail)
            message = message with { TrainDetail = ParseTrainDetail(detail, message.Content ?? "", $"{field}.train_detail", end) };
        return EmptyAnswer.Refuse(message, $"{field}.content");
    }

    static List<ChatMessage.Part> ParseParts(JsonArray parts, string field)
    {
        var list = new List<ChatMessage.Part>(parts.Count);
        for (var i = 0; i < parts.Count; i++)
        {
            var f = $"{field}[{i}]";
            if (parts[i] is not JsonObject p) throw new RowFieldException(f, $"expected a content part object, got {Kind(parts[i])}");
            var type = p["type"] is JsonValue tv && tv.GetValueKind() == JsonValueKind.String ? tv.GetValue<string>() : null;
            if (type != null && type != "text")
                throw new RowFieldException($"{f}.type", $"content part type '{type}' is not supported (text-only training)");
            var text = p["text"] is JsonValue xv && xv.GetValueKind() == JsonValueKind.String ? xv.GetValue<string>()
                : throw new RowFieldException($"{f}.text", p.ContainsKey("text") ? "not a string" : "missing");
            list.Add(new ChatMessage.Part(text, OptionalBool(p, "train", f), OptionalBool(p, "rto", f) ?? false));
        }
        return list;
    }

    static List<TrainSpan> ParseTrainDetail(JsonNode node, string content, string field, TrainDetailEnd endKind)
    {
        if (node is not JsonArray array) throw new RowFieldException(field, $"expected a list of spans, got {Kind(node)}");
        var spans = new List<TrainSpan>(array.Count);
        for (var i = 0; i < array.Count; i++)
        {
            var f = $"{field}[{i}]";
            if (array[i] is not JsonObject s) throw new RowFieldException(f, $"expected an object, got {Kind(array[i])}");
            var begin = RequiredInt(s, "begin_offset", f);
            var end = RequiredInt(s, "end_offset", f) + (endKind == TrainDetailEnd.Inclusive ? 1 : 0);
            var train = OptionalBool(s, "train", f); // null or absent = follow the message (what content parts without "train" become)
            if (begin < 0 || end < begin || end > content.Length)
                throw new RowFieldException(f, $"span begin_offset={begin} end_offset={RequiredInt(s, "end_offset", f)} ({(endKind == TrainDetailEnd.Inclusive ? "inclusive" : "exclusive")} end) is outside the content (length {content.Length})");
            spans.Add(new TrainSpan(begin, end, train, OptionalBool(s, "rto", f) ?? false));
        }
        return spans;
    }

    static List<ToolCall> ParseToolCalls(JsonNode node, string field)
    {
        if (node is not JsonArray array) throw new RowFieldException(field, $"expected a list, got {Kind(node)}");
        var list = new List<ToolCall>();
        for (var i = 0; i < array.Count; i++)
        {
            var f = $"{field}[{i}]";
            if (array[i] is not JsonObject call) throw new RowFieldException(f, $"expected an object, got {Kind(array[i])}");
            var fn = call["function"] as JsonObject ?? call;
            var name = fn["name"] is JsonValue nv && nv.GetValueKind() == JsonValueKind.String ? nv.GetValue<string>()
                : throw new RowFieldException($"{f}.name", "missing or not a string");
            JsonObject? args = fn["arguments"] switch
            {
                null => null,
                JsonObject o => (JsonObject)o.DeepClone(),
                // OpenAI-style arguments are a JSON string; the template iterates a mapping, so parse it.
                JsonValue s when s.GetValueKind() == JsonValueKind.String => ParseArgs(s.GetValue<string>(), $"{f}.arguments"),
                var other => throw new RowFieldException($"{f}.arguments", $"expected an object, got {Kind(other)}"),
            };
            list.Add(new ToolCall(name, args));
        }
        return list;
    }

    static JsonObject ParseArgs(string json, string field)
    {
        try
        {
            return JsonNode.Parse(json, documentOptions: JsonErrorText.Strict) as JsonObject ?? throw new RowFieldException(field, "the JSON string is not an object");
        }
        catch (JsonException e)
        {
            throw new RowFieldException(field, JsonErrorText.Describe(e, json, "string"));
        }
    }

    /// <summary>The canonical JSON of a conversation (content parts appear as content + train_detail).</summary>
    public static JsonObject ToJson(Conversation c)
    {
        var messages = new JsonArray();
        foreach (var m in c.Messages)
        {
            var o = new JsonObject { ["role"] = m.Role, ["content"] = m.Content };
            if (m.Train is { } t) o["train"] = t;
            if (m.TrainDetail != null)
            {
                var spans = new JsonArray();
                foreach (var s in m.TrainDetail)
                {
                    var so = new JsonObject { ["begin_offset"] = s.BeginOffset, ["end_offset"] = s.EndOffset, ["train"] = s.Train };
                    if (s.Rto) so["rto"] = true;
                    spans.Add(so);
                }
                o["train_detail"] = spans;
            }
            if (m.ReasoningContent != null) o["reasoning_content"] = m.ReasoningContent;
            if (m.ToolCalls != null)
                o["tool_calls"] = new JsonArray(m.ToolCalls.Select(tc => (JsonNode)new JsonObject
                {
                    ["type"] = "function",
                    ["function"] = new JsonObject { ["name"] = tc.Name, ["arguments"] = tc.Arguments?.DeepClone() },
                }).ToArray());
            messages.Add(o);
        }
        var row = new JsonObject { ["messages"] = messages };
        if (c.Category != null) row["category"] = c.Category;
        if (c.Id != null) row["id"] = c.Id;
        if (c.Metadata != null)
            foreach (var (k, v) in c.Metadata) row[k] = v?.DeepClone();
        return row;
    }

    internal static Dictionary<string, JsonNode?> Metadata(JsonObject row, params string[] consumed)
    {
        var skip = new HashSet<string>(consumed);
        var meta = new Dictionary<string, JsonNode?>();
        foreach (var (k, v) in row)
            if (!skip.Contains(k)) meta[k] = v?.DeepClone();
        return meta;
    }

    internal static string? OptionalString(JsonObject o, string key) => o[key] switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        var other => throw new RowFieldException(key, $"expected a string, got {Kind(other)}"),
    };

    internal static string? OptionalId(JsonObject o, string key) => o[key] switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        JsonValue v when v.GetValueKind() == JsonValueKind.Number => v.ToJsonString(),
        var other => throw new RowFieldException(key, $"expected a string or number, got {Kind(other)}"),
    };

    internal static string RequiredString(JsonObject o, string key, string? prefix = null)
    {
        var field = prefix == null ? key : $"{prefix}.{key}";
        return o[key] switch
        {
            JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
            null => throw new RowFieldException(field, o.ContainsKey(key) ? "is null" : "missing"),
            var other => throw new RowFieldException(field, $"expected a string, got {Kind(other)}"),
        };
    }

    static bool? OptionalBool(JsonObject o, string key, string field) => o[key] switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.True => true,
        JsonValue v when v.GetValueKind() == JsonValueKind.False => false,
        var other => throw new RowFieldException($"{field}.{key}", $"expected true or false, got {Kind(other)}"),
    };

    static int RequiredInt(JsonObject o, string key, string field) => o[key] switch
    {
        JsonValue v when v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<int>(out var i) => i,
        JsonValue v when v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<long>(out var l) && l is >= int.MinValue and <= int.MaxValue => (int)l,
        JsonValue v when v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<double>(out var d) && d == Math.Floor(d) && Math.Abs(d) < int.MaxValue => (int)d,
        null => throw new RowFieldException($"{field}.{key}", "missing"),
        var other => throw new RowFieldException($"{field}.{key}", $"expected an integer, got {Kind(other)}"),
    };

    internal static string Kind(JsonNode? node) => node switch
    {
        null => "null",
        JsonObject => "an object",
        JsonArray => "a list",
        JsonValue v => v.GetValueKind() switch
        {
            JsonValueKind.String => "a string",
            JsonValueKind.Number => "a number",
            JsonValueKind.True or JsonValueKind.False => "a boolean",
            _ => "null",
        },
        _ => "unknown",
    };
}
