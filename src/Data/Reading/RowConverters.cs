using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Qwen35.Data;

/// <summary>Input row layouts the reader understands; <see cref="Auto"/> picks one per row from its keys.</summary>
public enum RowFormat
{
    Auto,
    /// <summary><c>messages: [{role, content, train?, train_detail?, reasoning_content?}]</c> (the trainer's own schema, TRL conversational).</summary>
    Messages,
    /// <summary>ShareGPT <c>conversations: [{from, value, weight?}]</c>.</summary>
    ShareGpt,
    /// <summary>TRL <c>prompt</c> + <c>completion</c> (strings or message lists); only the completion is trained.</summary>
    PromptCompletion,
    /// <summary>AnswerCarefully / ichikara <c>text</c> (user) + <c>output</c> (assistant), id in <c>ID</c>.</summary>
    TextOutput,
    /// <summary>Alpaca <c>instruction</c> + <c>input</c>? + <c>output</c> (+ <c>system</c>?).</summary>
    Alpaca,
    /// <summary>DeRTa <c>prefix</c> (never trained) + <c>text</c> (trained; RTO when <c>safe</c> is true).</summary>
    PrefixText,
    /// <summary>APTO multiturn <c>question_turnK</c> / <c>answer_turnK</c>.</summary>
    QuestionAnswerTurns,
}

/// <summary>Converts one row (a JSON object) of any supported layout into a <see cref="Conversation"/>.</summary>
public static class RowConverters
{
    /// <summary>The layout a row's keys indicate, or null when none matches.</summary>
    static RowFormat? Detect(JsonObject row)
    {
        if (row.ContainsKey("messages")) return RowFormat.Messages;
        if (row.ContainsKey("conversations")) return RowFormat.ShareGpt;
        if (row.ContainsKey("prompt") && row.ContainsKey("completion")) return RowFormat.PromptCompletion;
        if (row.ContainsKey("prefix") && row.ContainsKey("text")) return RowFormat.PrefixText;
        if (row.ContainsKey("instruction") && row.ContainsKey("output")) return RowFormat.Alpaca;
        if (row.ContainsKey("text") && row.ContainsKey("output")) return RowFormat.TextOutput;
        if (row.ContainsKey("question_turn1")) return RowFormat.QuestionAnswerTurns;
        return null;
    }

    public static (Conversation Conversation, RowFormat Format) Convert(JsonObject row, RowFormat format = RowFormat.Auto, TrainDetailEnd end = TrainDetailEnd.Exclusive)
    {
        var f = format == RowFormat.Auto
            ? Detect(row) ?? throw new RowFieldException("(row)",
                $"no known columns (expected messages | conversations | prompt+completion | prefix+text | instruction+output | text+output | question_turnK+answer_turnK); keys: [{string.Join(", ", row.Select(p => p.Key))}]")
            : format;
        var c = f switch
        {
            RowFormat.Messages => ConversationJson.Parse(row, end),
            RowFormat.ShareGpt => ShareGpt(row),
            RowFormat.PromptCompletion => PromptCompletion(row),
            RowFormat.TextOutput => TextOutput(row),
            RowFormat.Alpaca => Alpaca(row),
            RowFormat.PrefixText => PrefixText(row),
            RowFormat.QuestionAnswerTurns => QuestionAnswerTurns(row),
            _ => throw new ArgumentOutOfRangeException(nameof(format)),
        };
        return (c, f);
    }

    static Conversation Make(JsonObject row, List<ChatMessage> messages, params string[] consumed) =>
        new(messages, ConversationJson.OptionalString(row, "category"), Id(row),
            ConversationJson.Metadata(row, [.. consumed, "category", "id", "ID"]));

    static string? Id(JsonObject row) => ConversationJson.OptionalId(row, row.ContainsKey("id") ? "id" : "ID");

    static Conversation ShareGpt(JsonObject row)
    {
        if (row["conversations"] is not JsonArray turns || turns.Count == 0)
            throw new RowFieldException("conversations", "expected a non-empty list of {from, value}");
        var messages = new List<ChatMessage>();
        for (var i = 0; i < turns.Count; i++)
        {
            var field = $"conversations[{i}]";
            if (turns[i] is not JsonObject t) throw new RowFieldException(field, "expected an object {from, value}");
            var from = ConversationJson.RequiredString(t, "from", field);
            var role = from.ToLowerInvariant() switch
            {
                "human" or "user" => Roles.User,
                "gpt" or "assistant" or "model" or "chatgpt" or "bot" => Roles.Assistant,
                "system" => Roles.System,
                "tool" or "function_response" or "observation" => Roles.Tool,
                _ => throw new RowFieldException($"{field}.from", $"unknown speaker '{from}' (human, gpt, system, tool)"),
            };
            var value = ConversationJson.RequiredString(t, "value", field);
            bool? train = t["weight"] switch
            {
                null => null,
                JsonValue w when w.GetValueKind() == JsonValueKind.Number => w.GetValue<double>() != 0,
                JsonValue w when w.GetValueKind() is JsonValueKind.True or JsonValueKind.False => w.GetValue<bool>(),
                _ => throw new RowFieldException($"{field}.weight", "expected a number or boolean"),
            };
            messages.Add(EmptyAnswer.Refuse(new ChatMessage(role, value, train), $"{field}.value"));
        }
        return Make(row, messages, "conversations");
    }

    static Conversation PromptCompletion(JsonObject row)
    {
        // TRL: the loss is on the completion only, so every prompt message is context.
        var messages = new List<ChatMessage>();
        switch (row["prompt"])
        {
            case JsonValue v when v.GetValueKind() == JsonValueKind.String:
                messages.Add(new ChatMessage(Roles.User, v.GetValue<string>()));
                break;
            case JsonArray a:
                messages.AddRange(ConversationJson.ParseMessages(a, "prompt").Select(m => m with { Train = false }));
                break;
            default:
                throw new RowFieldException("prompt", "expected a string or a list of messages");
        }
        switch (row["completion"])
        {
            case JsonValue v when v.GetValueKind() == JsonValueKind.String:
                messages.Add(EmptyAnswer.Refuse(new ChatMessage(Roles.Assistant, v.GetValue<string>()), "completion"));
                break;
            case JsonArray a:
                messages.AddRange(ConversationJson.ParseMessages(a, "completion"));
                break;
            default:
                throw new RowFieldException("completion", "expected a string or a list of messages");
        }
        return Make(row, messages, "prompt", "completion");
    }

    static Conversation TextOutput(JsonObject row) => Make(row,
        [new ChatMessage(Roles.User, ConversationJson.RequiredString(row, "text")), Answer(row, "output")],
        "text", "output");

    /// <summary>The assistant turn given by a string column, refused when empty.</summary>
    static ChatMessage Answer(JsonObject row, string key) =>
        EmptyAnswer.Refuse(new ChatMessage(Roles.Assistant, ConversationJson.RequiredString(row, key)), key);

    static Conversation Alpaca(JsonObject row)
    {
        var instruction = ConversationJson.RequiredString(row, "instruction");
        var input = ConversationJson.OptionalString(row, "input");
        var system = ConversationJson.OptionalString(row, "system");
        var messages = new List<ChatMessage>();
        if (!string.IsNullOrWhiteSpace(system)) messages.Add(new ChatMessage(Roles.System, system));
        messages.Add(new ChatMessage(Roles.User, string.IsNullOrWhiteSpace(input) ? instruction : instruction + "\n\n" + input));
        messages.Add(Answer(row, "output"));
        return Make(row, messages, "instruction", "input", "output", "system");
    }

    // DeRTa writes prefix = "[INST] {question} [\INST] {harmful lead-in}" and text = " {response}<|end_of_text|>".
    static readonly Regex InstPrefix = new(@"^\s*\[INST\](?<q>.*?)\[[\\/]INST\](?<lead>.*)$", RegexOptions.Singleline | RegexOptions.CultureInvariant);
    static readonly string[] EndMarkers = ["<|end_of_text|>", "<|endoftext|>", "<|eot_id|>", "<|im_end|>", "</s>"];

    static Conversation PrefixText(JsonObject row)
    {
        var prefix = ConversationJson.RequiredString(row, "prefix");
        var text = ConversationJson.RequiredString(row, "text");
        foreach (var marker in EndMarkers)
            if (text.EndsWith(marker, StringComparison.Ordinal)) { text = text[..^marker.Length]; break; }
        // The response is the trained answer; a lead-in alone (or nothing) would train an immediate end of turn.
        if (PyText.Strip(text).Length == 0) throw new RowFieldException("text", EmptyAnswer.Reason);
        var safe = row["safe"] switch
        {
            null => false,
            JsonValue v when v.GetValueKind() == JsonValueKind.String => string.Equals(v.GetValue<string>(), "true", StringComparison.OrdinalIgnoreCase),
            JsonValue v when v.GetValueKind() is JsonValueKind.True or JsonValueKind.False => v.GetValue<bool>(),
            _ => throw new RowFieldException("safe", "expected true/false or \"true\"/\"false\""),
        };
        string question, lead;
        if (ConversationJson.OptionalString(row, "instruction") is { } instruction) { question = instruction; lead = prefix; }
        else if (InstPrefix.Match(prefix) is { Success: true } m) { question = m.Groups["q"].Value; lead = m.Groups["lead"].Value; }
        else { question = prefix; lead = ""; }
        if (string.IsNullOrWhiteSpace(question)) throw new RowFieldException("prefix", "no question found in the prefix");
        lead = lead.TrimStart();
        var parts = new List<ChatMessage.Part>();
        if (lead.Length > 0) parts.Add(new ChatMessage.Part(lead, Train: false));
        // safe=true is DeRTa's RTO row: the (harmful) text is never a target; every position targets the refusal.
        parts.Add(new ChatMessage.Part(lead.Length > 0 ? text : text.TrimStart(), Train: true, Rto: safe));
        return Make(row, [new ChatMessage(Roles.User, question), ChatMessage.FromParts(Roles.Assistant, parts)], "prefix", "text", "safe", "instruction");
    }

    static Conversation QuestionAnswerTurns(JsonObject row)
    {
        var messages = new List<ChatMessage>();
        var consumed = new List<string>();
        for (var k = 1; row.ContainsKey($"question_turn{k}"); k++)
        {
            var q = row[$"question_turn{k}"];
            if (q is null) break; // shorter conversations leave the later turns null
            messages.Add(new ChatMessage(Roles.User, ConversationJson.RequiredString(row, $"question_turn{k}")));
            messages.Add(Answer(row, $"answer_turn{k}"));
        }
        foreach (var (key, _) in row)
            if (key.StartsWith("question_turn", StringComparison.Ordinal) || key.StartsWith("answer_turn", StringComparison.Ordinal)) consumed.Add(key);
        return Make(row, messages, [.. consumed]);
    }
}
