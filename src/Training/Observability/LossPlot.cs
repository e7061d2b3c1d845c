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
        // A DPO run: its train and eval rewards/accuracies on the same axis (both are in [0, 1] around log 2 = 0.69).
        foreach (var (key, label, size) in new[] { ("rewards/accuracies", "train rewards/accuracies", 3f), ("eval_rewards/accuracies", "eval rewards/accuracies", 6f) })
        {
            var points = history.Where(r => r.Extra?.ContainsKey(key) == true).ToArray();
            if (points.Length == 0) continue;
            var s = plot.Add.Scatter(points.Select(r => (double)r.Step).ToArray(), points.Select(r => Number(r.Extra![key])).ToArray());
            s.LegendText = label;
            s.MarkerSize = size;
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
        plot.YLabel(history.Any(r => r.Extra?.ContainsKey("rewards/accuracies") == true) ? "DPO loss (mean over pairs); rewards/accuracies" : "loss (mean token cross-entropy)");
        plot.ShowLegend();
        AtomicFile.WriteAllBytes(path, plot.GetImageBytes(900, 540, ScottPlot.ImageFormat.Png));
    }

    /// <summary>A metric from a record: a double when written by this run, a JsonElement when read back from the file.</summary>
    static double Number(object value) => value is System.Text.Json.JsonElement e ? e.GetDouble() : Convert.ToDouble(value, System.Globalization.CultureInfo.InvariantCulture);

    static string Ascii(string s) => new(s.Select(c => c < 128 ? c : '?').ToArray());
}
