using System.Globalization;

namespace Qwen35.Training.Loop;

/// <summary>How an objective's metrics beyond the loss appear in metrics.jsonl and the log (HF Trainer's spelling:
/// the training metric under its own name, the eval metric with an <c>eval_</c> prefix).</summary>
public static class ObjectiveMetrics
{
    /// <summary>The extra keys of one metrics.jsonl line; null when the objective has none.</summary>
    public static Dictionary<string, object>? ForRecord(IReadOnlyDictionary<string, double>? train, EvalResult? eval)
    {
        var extra = new Dictionary<string, object>(StringComparer.Ordinal);
        foreach (var (k, v) in train ?? new Dictionary<string, double>()) extra[k] = v;
        foreach (var (k, v) in eval?.Metrics ?? new Dictionary<string, double>()) extra["eval_" + k] = v;
        if (eval?.MetricsByCategory is { Count: > 0 } byCategory) extra["eval_metrics_by_category"] = byCategory;
        return extra.Count == 0 ? null : extra;
    }

    /// <summary>" rewards/accuracies 0.750 …" for the step's log line ("" without metrics).</summary>
    public static string Format(IReadOnlyDictionary<string, double>? metrics) => metrics is null ? ""
        : string.Concat(metrics.Select(kv => string.Create(CultureInfo.InvariantCulture, $" {kv.Key} {kv.Value:F4}")));
}
