using Parquet;
using Parquet.Schema;
using Parquet.Serialization;

namespace Qwen35.Data.Preference;

/// <summary>
/// Writes preference pairs as Parquet in TRL's conversational layout: <c>id</c>?, <c>category</c>, and
/// <c>prompt</c>, <c>chosen</c>, <c>rejected</c> as <c>list&lt;struct&lt;role, content, reasoning_content?&gt;&gt;</c>
/// (what <c>datasets</c> writes for a conversational preference set). A standard-format row is written in its
/// conversational form (its prompt is one user message), which reads back as the same pair.
/// </summary>
public static class PreferenceParquetWriter
{
    public static void Write(IReadOnlyList<PreferenceExample> examples, string path, int rowGroupSize = 100_000)
    {
        if (rowGroupSize <= 0) throw new ArgumentOutOfRangeException(nameof(rowGroupSize), "row group size must be positive");
        var all = examples.SelectMany(e => e.Prompt.Concat(e.Chosen).Concat(e.Rejected)).ToList();
        var withCalls = examples.ToList().FindIndex(e => e.Prompt.Concat(e.Chosen).Concat(e.Rejected).Any(m => m.ToolCalls is { Count: > 0 }));
        if (withCalls >= 0) throw new UserInputException($"{examples[withCalls].Location}: has tool_calls, which the Parquet writer does not store");
        var hasReasoning = all.Any(m => m.ReasoningContent != null);
        var hasId = examples.Any(e => e.Id != null);

        Field Messages(string name)
        {
            var f = new List<Field> { new DataField<string>("role", true), new DataField<string>("content", true) };
            if (hasReasoning) f.Add(new DataField<string>("reasoning_content", true));
            return new ListField(name, new StructField("element", f.ToArray()));
        }
        var fields = new List<Field>();
        if (hasId) fields.Add(new DataField<string>("id", true));
        fields.Add(new DataField<string>("category", true));
        fields.AddRange([Messages("prompt"), Messages("chosen"), Messages("rejected")]);

        List<Dictionary<string, object?>> Rows(IReadOnlyList<ChatMessage> messages) => messages.Select(m =>
        {
            var d = new Dictionary<string, object?> { ["role"] = m.Role, ["content"] = m.Content };
            if (hasReasoning) d["reasoning_content"] = m.ReasoningContent;
            return d;
        }).ToList();
        var rows = new List<IDictionary<string, object?>>(examples.Count);
        foreach (var e in examples)
        {
            var row = new Dictionary<string, object?>();
            if (hasId) row["id"] = e.Id;
            row["category"] = e.Category;
            row["prompt"] = Rows(e.Prompt);
            row["chosen"] = Rows(e.Chosen);
            row["rejected"] = Rows(e.Rejected);
            rows.Add(row);
        }
        AtomicFile.Write(path, fs =>
            ParquetSerializer.SerializeUntypedAsync(rows, new ParquetSchema(fields), fs,
                new ParquetOptions { RowGroupSize = rowGroupSize }).GetAwaiter().GetResult());
    }
}
