using System.Text.Json;
using System.Text.Json.Nodes;

namespace Qwen35.Data;

/// <summary>
/// The line protocol of <c>trainer tokenize</c>: each input line is <c>{"text": "..."}</c> or <c>{"messages": [...],
/// "add_generation_prompt": bool?, "enable_thinking": bool?, "tools": [...]?}</c>; each output line is
/// <c>{"ids": [...]}</c>, plus <c>"text"</c> (the rendered string) and <c>"labels_mask"</c> (1 where trained, with
/// the <see cref="MaskOptions"/> rules) for messages.
/// </summary>
public static class TokenizeJsonl
{
    /// <summary>Processes every line; a bad line throws <see cref="DatasetRowException"/> naming source and line (1-based, blank lines counted).</summary>
    public static int Process(ITokenizer tokenizer, TextReader input, TextWriter output, string sourceName, MaskOptions? mask = null)
    {
        var encoder = new SftEncoder(tokenizer, mask);
        var lineNo = 0;
        var count = 0;
        for (var line = input.ReadLine(); line != null; line = input.ReadLine())
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            try
            {
                output.WriteLine(ProcessLine(encoder, line).ToJsonString());
                count++;
            }
            catch (RowFieldException e) { throw new DatasetRowException(new DatasetRowError(DatasetLocation.AtLine(sourceName, lineNo), e.Field, e.Reason)); }
            catch (ChatTemplateException e) { throw new DatasetRowException(new DatasetRowError(DatasetLocation.AtLine(sourceName, lineNo), "messages", e.Message)); }
        }
        return count;
    }

    static JsonObject ProcessLine(SftEncoder encoder, string line)
    {
        JsonObject row;
        try { row = JsonNode.Parse(line, documentOptions: JsonErrorText.Strict) as JsonObject ?? throw new RowFieldException("(line)", "expected a JSON object"); }
        catch (JsonException e) { throw new RowFieldException("(line)", JsonErrorText.Describe(e, line)); }
        if (row["messages"] is { } messagesNode)
        {
            var messages = ConversationJson.ParseMessages(messagesNode, "messages");
            var options = new ChatRenderOptions(Bool(row, "add_generation_prompt") ?? false, Bool(row, "enable_thinking"), row["tools"] as JsonArray);
            var e = encoder.EncodeDetailed(messages, options);
            return new JsonObject
            {
                ["ids"] = new JsonArray(e.InputIds.Select(i => (JsonNode)i).ToArray()),
                ["text"] = e.Text,
                ["labels_mask"] = new JsonArray(e.Labels.Select(l => (JsonNode)(l == TokenizedExample.IgnoreIndex ? 0 : 1)).ToArray()),
            };
        }
        var text = ConversationJson.RequiredString(row, "text");
        return new JsonObject { ["ids"] = new JsonArray(encoder.Tokenizer.Encode(text).Select(i => (JsonNode)i).ToArray()) };
    }

    static bool? Bool(JsonObject o, string key) => o[key] switch
    {
        null => null,
        JsonValue v when v.GetValueKind() is JsonValueKind.True or JsonValueKind.False => v.GetValue<bool>(),
        _ => throw new RowFieldException(key, "expected true or false"),
    };
}
