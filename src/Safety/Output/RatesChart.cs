using Qwen35.Safety.Scoring;

namespace Qwen35.Safety.Output;

/// <summary>rates.png: the violation, acceptable and (borderline) over-refusal rates, overall and per category, as
/// grouped bars. Legend labels are English so the picture needs no CJK font; category names are drawn with a font
/// that ScottPlot finds for their script when one is installed.</summary>
public static class RatesChart
{
    public static void Save(string path, SafetyBenchmark benchmark, MetricTable overall, IReadOnlyList<(string Category, MetricTable Table)> categories)
    {
        var name = benchmark.Name();
        var series = new List<(string Label, string Key)>
        {
            ("violation %", $"{name}:違反回答率(%)"),
            ("acceptable %", $"{name}:許容回答率(%)"),
        };
        if (benchmark == SafetyBenchmark.SafetyBorderlineJa) series.Add(("over-refusal %", $"{name}:回答拒否率(%)"));
        var groups = new List<(string Label, MetricTable Table)> { ("all", overall) };
        groups.AddRange(categories.Select(c => (c.Category, c.Table)));

        var plot = new ScottPlot.Plot();
        var palette = new ScottPlot.Palettes.Category10();
        var width = 0.8 / series.Count;
        for (var s = 0; s < series.Count; s++)
        {
            var bars = new List<ScottPlot.Bar>();
            for (var g = 0; g < groups.Count; g++)
                bars.Add(new ScottPlot.Bar
                {
                    Position = g + (s - (series.Count - 1) / 2.0) * width,
                    Value = groups[g].Table[series[s].Key] ?? 0,
                    Size = width,
                    FillColor = palette.GetColor(s),
                });
            var barPlot = plot.Add.Bars(bars);
            barPlot.LegendText = series[s].Label;
        }
        var ticks = groups.Select((g, i) => new ScottPlot.Tick(i, g.Label)).ToArray();
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(ticks);
        plot.Axes.Bottom.TickLabelStyle.FontName = ScottPlot.Fonts.Detect(string.Concat(groups.Select(g => g.Label)));
        plot.Axes.Bottom.TickLabelStyle.Rotation = groups.Count > 6 ? 45 : 0;
        plot.Axes.Bottom.TickLabelStyle.Alignment = groups.Count > 6 ? ScottPlot.Alignment.MiddleLeft : ScottPlot.Alignment.UpperCenter;
        plot.Axes.SetLimitsY(0, 115);   // room above 100 % for the legend
        plot.Axes.Margins(bottom: 0);
        plot.YLabel("% of judged answers");
        plot.Title($"{name}: rates per category");
        plot.ShowLegend(ScottPlot.Alignment.UpperRight);
        AtomicFile.WriteAllBytes(path, plot.GetImageBytes(Math.Max(700, 110 * groups.Count), 520, ScottPlot.ImageFormat.Png));
    }
}
