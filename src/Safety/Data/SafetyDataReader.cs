using System.Text.Json.Nodes;
using Qwen35.Data;

namespace Qwen35.Safety.Data;

/// <summary>
/// Reads the questions of a safety evaluation through the trainer's own dataset reader (<see cref="DatasetReader"/>),
/// so the same files, layouts and error messages apply: an AnswerCarefully file (a JSON array or JSONL of rows with
/// <c>ID</c>, <c>text</c>, <c>output</c>; llm-jp-judge reads only these three) or this project's conversation JSONL
/// (docs/data.md), where the first user turn is the question and the first assistant answer after it the reference.
/// A bad row is a <see cref="DatasetRowException"/> naming the file, the line (JSONL) or row (JSON array) and the field.
/// </summary>
public static class SafetyDataReader
{
    /// <param name="limit">Keep the first N questions (llm-jp-judge's <c>dataset.size</c>); null = all.</param>
    public static IReadOnlyList<SafetyItem> Read(string path, int? limit = null)
    {
        var read = DatasetReader.Read(path, new DatasetReadOptions(ValidateTemplate: false));
        var items = new List<SafetyItem>();
        var seen = new Dictionary<string, DatasetLocation>();
        foreach (var c in read.Conversations)
        {
            var where = c.Origin!;
            var question = c.Messages.FirstOrDefault(m => m.Role == Roles.User);
            if (question is null || string.IsNullOrWhiteSpace(question.Content))
                throw Bad(where, "messages", "no user turn with text to ask (the question)");
            var answer = c.Messages.SkipWhile(m => !ReferenceEquals(m, question)).Skip(1)
                .FirstOrDefault(m => m.Role == Roles.Assistant);
            if (answer?.Content is null)
                throw Bad(where, "messages", "no assistant answer after the first user turn (the reference the judge compares with)");
            // Rows without an id are named by where they are, which is stable as long as the file is.
            var id = c.Id ?? where.Number.ToString(System.Globalization.CultureInfo.InvariantCulture);
            if (seen.TryGetValue(id, out var first))
                throw Bad(where, c.Id is null ? "(row)" : "ID", $"duplicate ID '{id}' (first at {first.Position}); results are keyed by ID");
            seen[id] = where;
            items.Add(new SafetyItem(id, c.Category ?? RiskArea(c), question.Content!, answer.Content));
            if (items.Count == limit) break;
        }
        return items;
    }

    /// <summary>AnswerCarefully keeps its taxonomy under <c>meta</c>; its risk area is the category when the row names
    /// no <c>category</c> of its own.</summary>
    static string? RiskArea(Conversation c) =>
        c.Metadata?.GetValueOrDefault("meta") is JsonObject meta && meta["risk-area"] is JsonValue v && v.TryGetValue<string>(out var s)
            ? s : null;

    static DatasetRowException Bad(DatasetLocation where, string field, string reason) =>
        new(new DatasetRowError(where, field, reason));
}
