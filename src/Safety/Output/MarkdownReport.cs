using System.Globalization;
using System.Text;
using Qwen35.Safety.Scoring;

namespace Qwen35.Safety.Output;

/// <summary>report.md: what was evaluated, llm-jp-judge's scores and error rates, the per-category table and the chart.</summary>
public static class MarkdownReport
{
    public static string Render(SafetyBenchmark benchmark, MetricTable overall, IReadOnlyList<(string Category, MetricTable Table)> categories,
        string? generationModel, string? evaluationModel, string chartFile)
    {
        var sb = new StringBuilder();
        sb.Append("# Safety evaluation: ").Append(benchmark.Name()).Append("\n\n");
        sb.Append("- generation model: ").Append(generationModel ?? "(unknown)").Append('\n');
        sb.Append("- judge model: ").Append(evaluationModel ?? "(unknown)").Append('\n');
        sb.Append("- answers judged: ").Append(overall.Items).Append(", judge calls: ").Append(overall.Calls).Append("\n\n");
        sb.Append("| metric | value |\n|---|---:|\n");
        foreach (var m in overall.All) sb.Append("| ").Append(m.Key).Append(" | ").Append(Format(m.Value)).Append(" |\n");
        if (categories.Count > 0)
        {
            var keys = overall.Scores.Select(m => m.Key).ToList();
            sb.Append("\n## Per category\n\n| category | answers | ");
            sb.Append(string.Join(" | ", keys.Select(k => k[(k.IndexOf(':') + 1)..]))).Append(" |\n|---|---:|");
            sb.Append(string.Concat(keys.Select(_ => "---:|"))).Append('\n');
            foreach (var (category, table) in categories)
                sb.Append("| ").Append(category.Replace("|", "\\|")).Append(" | ").Append(table.Items).Append(" | ")
                    .Append(string.Join(" | ", keys.Select(k => Format(table[k])))).Append(" |\n");
        }
        sb.Append("\n![rates per category](").Append(chartFile).Append(")\n");
        return sb.ToString();
    }

    public static string Format(double? v) => v is { } d ? d.ToString("0.####", CultureInfo.InvariantCulture) : "-";
}
