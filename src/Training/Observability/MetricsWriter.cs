using System.Text.Json;
using System.Text.Json.Serialization;

namespace Qwen35.Training.Observability;

/// <summary>One line of metrics.jsonl. Null fields are left out (eval losses only appear on eval steps).</summary>
public sealed record MetricsRecord
{
    [JsonPropertyName("step")] public int Step { get; init; }
    [JsonPropertyName("epoch")] public double? Epoch { get; init; }
    [JsonPropertyName("loss")] public double? Loss { get; init; }
    [JsonPropertyName("eval_loss")] public double? EvalLoss { get; init; }
    [JsonPropertyName("eval_loss_by_category")] public IReadOnlyDictionary<string, double>? EvalLossByCategory { get; init; }
    [JsonPropertyName("lr")] public double? Lr { get; init; }
    [JsonPropertyName("grad_norm")] public double? GradNorm { get; init; }
    [JsonPropertyName("trained_tokens")] public long? TrainedTokens { get; init; }
    [JsonPropertyName("tokens_per_s")] public double? TokensPerSecond { get; init; }
    [JsonPropertyName("elapsed_s")] public double? ElapsedSeconds { get; init; }
    [JsonPropertyName("memory_mb")] public double? MemoryMb { get; init; }
    [JsonPropertyName("skipped_nonfinite")] public int? SkippedNonfinite { get; init; }
    /// <summary>Numbers of the periodic evaluators (Loop/PeriodicEvaluator.cs) that ran at this step, e.g. the safety rates.</summary>
    [JsonPropertyName("evals")] public IReadOnlyDictionary<string, double>? Evals { get; init; }

    /// <summary>An objective's own metrics at the top level of the line (DPO: TRL's <c>rewards/chosen</c>, …, and
    /// <c>eval_rewards/chosen</c>, …); read back as <see cref="JsonElement"/>s.</summary>
    [JsonExtensionData] public Dictionary<string, object>? Extra { get; init; }
}

/// <summary>
/// Appends <see cref="MetricsRecord"/>s to output_dir/metrics.jsonl, one flushed line each, so a crashed run keeps
/// every metric logged before the crash.
/// </summary>
public sealed class MetricsWriter : IDisposable
{
    // A diverged run can produce NaN eval losses; write them as "NaN" rather than failing to log.
    static readonly JsonSerializerOptions Json = new()
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };
    readonly StreamWriter? _writer;
    public string? Path { get; }
    public List<MetricsRecord> History { get; } = [];

    /// <summary>Opens the file; when resuming at <paramref name="keepUpToStep"/>, lines after that step are dropped
    /// so the resumed run's lines continue the curve without duplicates. A null path keeps the history in memory only
    /// (the ranks of a multi-process job other than the writer).</summary>
    public MetricsWriter(string? path, int? keepUpToStep = null)
    {
        Path = path;
        if (path is null) return;
        if (keepUpToStep is { } keep && File.Exists(path))
        {
            History.AddRange(Read(path).Where(r => r.Step <= keep));
            AtomicFile.WriteText(path, w =>
            {
                foreach (var r in History) w.Write(JsonSerializer.Serialize(r, Json) + "\n");
            });
            _writer = new StreamWriter(path, append: true);
        }
        else _writer = new StreamWriter(path, append: false);
    }

    public void Write(MetricsRecord record)
    {
        History.Add(record);
        _writer?.WriteLine(JsonSerializer.Serialize(record, Json));
        _writer?.Flush();
    }

    public static List<MetricsRecord> Read(string path) =>
        File.ReadLines(path).Where(l => l.Length > 0).Select(l => JsonSerializer.Deserialize<MetricsRecord>(l, Json)!).ToList();

    public void Dispose() => _writer?.Dispose();
}
