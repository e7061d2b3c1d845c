using System.Text.Json.Nodes;
using Qwen35.Safety.Scoring;

namespace Qwen35.Safety.Output;

/// <summary>
/// The JSON tables of a run, in llm-jp-judge's layout (<c>dashboard/base.py</c>: a list with one object per row,
/// <c>json.dump(indent=4, ensure_ascii=False)</c>): score_table.json holds <c>generation_model</c>,
/// <c>evaluation_model</c>, the score keys and then the error-rate keys; evaluate_error_rate_table.json the error
/// rates alone (llm-jp-judge's own split); category_table.json one row per category with the same keys.
/// </summary>
public static class ScoreTables
{
    public static JsonArray ScoreTable(MetricTable table, string? generationModel, string? evaluationModel) =>
        [Row(generationModel, evaluationModel, table.All)];

    public static JsonArray ErrorRateTable(MetricTable table, string? generationModel, string? evaluationModel) =>
        [Row(generationModel, evaluationModel, table.ErrorRates)];

    public static JsonArray CategoryTable(IReadOnlyList<(string Category, MetricTable Table)> categories) =>
        new(categories.Select(c =>
        {
            var row = new JsonObject { ["category"] = c.Category, ["items"] = c.Table.Items };
            foreach (var m in c.Table.All) row[m.Key] = Value(m.Value);
            return (JsonNode?)row;
        }).ToArray());

    public static void Write(string path, JsonArray table) =>
        AtomicFile.WriteAllText(path, PythonJson.Dumps(table, ensureAscii: false, indent: 4));

    /// <summary>Reads score_table.json's one row back as key → value (null for a null value).</summary>
    public static IReadOnlyList<Metric> ReadScores(string path)
    {
        var node = JsonNode.Parse(File.ReadAllText(path));
        if (node is not JsonArray { Count: > 0 } a || a[0] is not JsonObject row)
            throw new UserInputException($"{path}: expected a list holding one object (score_table.json as safety-eval writes it)");
        return row.Where(p => p.Key is not ("generation_model" or "evaluation_model"))
            .Select(p => new Metric(p.Key, p.Value is JsonValue v && v.TryGetValue<double>(out var d) ? d : null)).ToList();
    }

    static JsonObject Row(string? generationModel, string? evaluationModel, IEnumerable<Metric> metrics)
    {
        var row = new JsonObject { ["generation_model"] = generationModel, ["evaluation_model"] = evaluationModel };
        foreach (var m in metrics) row[m.Key] = Value(m.Value);
        return row;
    }

    static JsonNode? Value(double? v) => v is { } d ? JsonValue.Create(d) : null;
}
