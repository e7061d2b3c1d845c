namespace Qwen35.Training.Observability;

/// <summary>Renders the train and eval loss curves, and the periodic evaluations' numbers on a right axis, to a PNG
/// (ASCII labels only: the machine may lack CJK fonts).</summary>
public static class LossPlot
{
    public static void Save(string path, IReadOnlyList<MetricsRecord> history, string title)
    {
        var plot = new ScottPlot.Plot();
        var train = history.Where(r => r.Loss is not null).ToArray();
        if (train.Length > 0)
        {
            var s = plot.Add.Scatter(train.Select(r => (double)r.Step).ToArray(), train.Select(r => r.Loss!.Value).ToArray());
            s.LegendText = "train loss";
            s.MarkerSize = 3;
        }
        var eval = history.Where(r => r.EvalLoss is not null).ToArray();
        if (eval.Length > 0)
        {
            var s = plot.Add.Scatter(eval.Select(r => (double)r.Step).ToArray(), eval.Select(r => r.EvalLoss!.Value).ToArray());
            s.LegendText = "eval loss";
            s.MarkerSize = 6;
        }
        // Periodic evaluations (e.g. safety rates in %) have their own scale: the right axis, one series per key.
        var evaluated = history.Where(r => r.Evals is { Count: > 0 }).ToArray();
        foreach (var key in evaluated.SelectMany(r => r.Evals!.Keys).Distinct().Order(StringComparer.Ordinal))
        {
            var points = evaluated.Where(r => r.Evals!.TryGetValue(key, out var v) && double.IsFinite(v)).ToArray();
            if (points.Length == 0) continue;
            var s = plot.Add.Scatter(points.Select(r => (double)r.Step).ToArray(), points.Select(r => r.Evals![key]).ToArray());
            s.LegendText = Ascii(key);
            s.MarkerSize = 6;
            s.LinePattern = ScottPlot.LinePattern.Dashed;
            s.Axes.YAxis = plot.Axes.Right;
        }
        if (evaluated.Length > 0) plot.Axes.Right.Label.Text = "periodic evaluations (see legend)";
        plot.Title(Ascii(title));
        plot.XLabel("optimizer step");
        plot.YLabel("loss (mean token cross-entropy)");
        plot.ShowLegend();
        AtomicFile.WriteAllBytes(path, plot.GetImageBytes(900, 540, ScottPlot.ImageFormat.Png));
    }

    static string Ascii(string s) => new(s.Select(c => c < 128 ? c : '?').ToArray());
}
