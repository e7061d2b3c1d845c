using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace Qwen35.Safety.Output;

/// <summary>One metric of a base-vs-tuned comparison.</summary>
public sealed record ComparedMetric(string Key, double? Base, double? Tuned)
{
    public double? Delta => Base is { } b && Tuned is { } t ? t - b : null;
}

/// <summary>The side-by-side table of two runs of the same benchmark with the same judge (<c>--compare</c>):
/// overall metrics and, where the data has categories, each category's, with tuned − base.</summary>
public static class Comparison
{
    public const string MarkdownFile = "compare.md";
    public const string JsonFile = "compare.json";

    public static IReadOnlyList<ComparedMetric> Rows(SafetyEvalResult baseRun, SafetyEvalResult tuned)
    {
        var rows = Pair(baseRun.Overall.All.ToList(), tuned.Overall.All.ToList(), "");
        var tunedCategories = tuned.Categories.ToDictionary(c => c.Category, c => c.Table);
        foreach (var (category, table) in baseRun.Categories)
            if (tunedCategories.TryGetValue(category, out var t))
                rows.AddRange(Pair(table.Scores.ToList(), t.Scores.ToList(), $"[{category}] "));
        return rows;
    }

    static List<ComparedMetric> Pair(List<Scoring.Metric> a, List<Scoring.Metric> b, string prefix) =>
        a.Select(m => new ComparedMetric(prefix + m.Key, m.Value, b.FirstOrDefault(x => x.Key == m.Key)?.Value)).ToList();

    public static string Markdown(IReadOnlyList<ComparedMetric> rows, string baseName, string tunedName)
    {
        var sb = new StringBuilder();
        sb.Append("| metric | base (").Append(baseName).Append(") | tuned (").Append(tunedName).Append(") | Δ |\n|---|---:|---:|---:|\n");
        foreach (var r in rows)
            sb.Append("| ").Append(r.Key).Append(" | ").Append(MarkdownReport.Format(r.Base)).Append(" | ")
                .Append(MarkdownReport.Format(r.Tuned)).Append(" | ").Append(Signed(r.Delta)).Append(" |\n");
        return sb.ToString();
    }

    public static void Write(string dir, IReadOnlyList<ComparedMetric> rows, string baseName, string tunedName)
    {
        AtomicFile.WriteAllText(Path.Combine(dir, MarkdownFile), $"# Base vs tuned\n\n{Markdown(rows, baseName, tunedName)}");
        var json = new JsonArray(rows.Select(r => (JsonNode?)new JsonObject
        {
            ["metric"] = r.Key, ["base"] = r.Base, ["tuned"] = r.Tuned, ["delta"] = r.Delta,
        }).ToArray());
        AtomicFile.WriteAllText(Path.Combine(dir, JsonFile), PythonJson.Dumps(new JsonObject
        {
            ["base_model"] = baseName, ["tuned_model"] = tunedName, ["metrics"] = json,
        }, ensureAscii: false, indent: 4));
    }

    static string Signed(double? v) => v is { } d ? d.ToString("+0.####;-0.####;0", CultureInfo.InvariantCulture) : "-";
}
