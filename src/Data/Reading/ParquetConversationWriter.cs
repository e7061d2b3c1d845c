using System.Text.Json;
using System.Text.Json.Nodes;
using Parquet;
using Parquet.Schema;
using Parquet.Serialization;

namespace Qwen35.Data;

/// <summary>
/// Writes conversations as Parquet in the Hugging Face layout: <c>id</c>?, <c>messages: list&lt;struct&lt;role,
/// content, train?, train_detail?, reasoning_content?&gt;&gt;</c>, <c>category</c>, then one column per metadata key.
/// </summary>
/// <remarks>
/// Optional message fields get a column only when some message uses them, so plain data keeps the plain
/// <c>list&lt;struct&lt;role, content&gt;&gt;</c> schema. Content parts are stored as content + train_detail (the
/// reader's canonical form, with an <c>rto</c> flag). A metadata key whose values are all booleans, all integers,
/// all numbers or all strings gets that column type; anything else (objects, lists, mixed types) is stored as its
/// JSON text in a string column (and reads back as that string). Tool calls are refused.
/// </remarks>
public static class ParquetConversationWriter
{
    public static void Write(IReadOnlyList<Conversation> conversations, string path, int rowGroupSize = 100_000)
    {
        if (rowGroupSize <= 0) throw new ArgumentOutOfRangeException(nameof(rowGroupSize), "row group size must be positive");
        var messages = conversations.SelectMany(c => c.Messages).ToList();
        var callIndex = conversations.ToList().FindIndex(c => c.Messages.Any(m => m.ToolCalls is { Count: > 0 }));
        if (callIndex >= 0) throw new UserInputException($"conversation {callIndex} has tool_calls, which the Parquet writer does not store");
        var hasTrain = messages.Any(m => m.Train != null);
        var hasDetail = messages.Any(m => m.TrainDetail != null);
        var hasReasoning = messages.Any(m => m.ReasoningContent != null);
        var hasId = conversations.Any(c => c.Id != null);

        var messageFields = new List<Field> { new DataField<string>("role", true), new DataField<string>("content", true) };
        if (hasTrain) messageFields.Add(new DataField<bool?>("train"));
        if (hasDetail)
            messageFields.Add(new ListField("train_detail", new StructField("element",
                new DataField<int>("begin_offset"), new DataField<int>("end_offset"), new DataField<bool?>("train"), new DataField<bool?>("rto"))));
        if (hasReasoning) messageFields.Add(new DataField<string>("reasoning_content", true));

        var fields = new List<Field>();
        if (hasId) fields.Add(new DataField<string>("id", true));
        fields.Add(new ListField("messages", new StructField("element", messageFields.ToArray())));
        fields.Add(new DataField<string>("category", true));

        var metaKeys = conversations.Where(c => c.Metadata != null).SelectMany(c => c.Metadata!.Keys).Distinct().ToList();
        var metaTypes = new Dictionary<string, Type>();
        foreach (var key in metaKeys)
        {
            if (key is "id" or "messages" or "category") throw new InvalidOperationException($"metadata key '{key}' collides with a column");
            var values = conversations.Select(c => c.Metadata?.GetValueOrDefault(key)).Where(v => v != null).ToList();
            var type = ColumnType(values!);
            metaTypes[key] = type;
            fields.Add(type == typeof(string) ? new DataField<string>(key, true) : new DataField(key, type, isNullable: true));
        }

        var rows = new List<IDictionary<string, object?>>(conversations.Count);
        foreach (var c in conversations)
        {
            var row = new Dictionary<string, object?>();
            if (hasId) row["id"] = c.Id;
            row["messages"] = c.Messages.Select(m =>
            {
                var d = new Dictionary<string, object?> { ["role"] = m.Role, ["content"] = m.Content };
                if (hasTrain) d["train"] = m.Train;
                if (hasDetail)
                    d["train_detail"] = m.TrainDetail?.Select(s => new Dictionary<string, object?>
                    {
                        ["begin_offset"] = s.BeginOffset, ["end_offset"] = s.EndOffset, ["train"] = s.Train, ["rto"] = s.Rto ? true : null,
                    }).ToList();
                if (hasReasoning) d["reasoning_content"] = m.ReasoningContent;
                return d;
            }).ToList();
            row["category"] = c.Category;
            foreach (var key in metaKeys) row[key] = ColumnValue(c.Metadata?.GetValueOrDefault(key), metaTypes[key]);
            rows.Add(row);
        }

        AtomicFile.Write(path, fs =>
            ParquetSerializer.SerializeUntypedAsync(rows, new ParquetSchema(fields), fs,
                new ParquetOptions { RowGroupSize = rowGroupSize }).GetAwaiter().GetResult());
    }

    static Type ColumnType(List<JsonNode> values)
    {
        if (values.Count == 0) return typeof(string);
        var kinds = values.Select(v => v is JsonValue jv ? jv.GetValueKind() : JsonValueKind.Object).ToList();
        if (kinds.All(k => k is JsonValueKind.True or JsonValueKind.False)) return typeof(bool?);
        if (kinds.All(k => k == JsonValueKind.Number))
            return values.All(v => v.AsValue().TryGetValue<long>(out _) || IsIntegral(v)) ? typeof(long?) : typeof(double?);
        return typeof(string);
    }

    static bool IsIntegral(JsonNode v)
    {
        var text = v.ToJsonString();
        return !text.Contains('.') && !text.Contains('e') && !text.Contains('E') && long.TryParse(text, out _);
    }

    static object? ColumnValue(JsonNode? v, Type type)
    {
        if (v == null) return null;
        if (type == typeof(bool?)) return v.GetValue<bool>();
        if (type == typeof(long?)) return long.Parse(v.ToJsonString(), System.Globalization.CultureInfo.InvariantCulture);
        if (type == typeof(double?)) return double.Parse(v.ToJsonString(), System.Globalization.CultureInfo.InvariantCulture);
        return v is JsonValue jv && jv.GetValueKind() == JsonValueKind.String ? jv.GetValue<string>() : v.ToJsonString();
    }
}
