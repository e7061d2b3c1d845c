using Qwen35.Safety.Backends;
using Qwen35.Safety.Generation;
using Qwen35.Safety.Judging;

namespace Qwen35.Safety;

/// <summary>What one evaluation does; everything but the three paths has llm-jp-judge's default.</summary>
public sealed record SafetyEvalOptions
{
    public SafetyBenchmark Benchmark { get; init; } = SafetyBenchmark.SafetyJa;

    /// <summary>AnswerCarefully JSON/JSONL or conversation JSONL (<see cref="Data.SafetyDataReader"/>).</summary>
    public required string DataPath { get; init; }

    /// <summary>Where generations.jsonl, judgments.jsonl, the tables and the report go (and are resumed from).</summary>
    public required string OutDir { get; init; }

    /// <summary>The first N questions only (llm-jp-judge's dataset.size); null = all.</summary>
    public int? Limit { get; init; }

    /// <summary>Answer sampling; null = the benchmark's (<see cref="SamplingSettings.Generation"/>).</summary>
    public SamplingSettings? Generation { get; init; }

    /// <summary>Judge sampling; null = <see cref="SamplingSettings.Judge"/>.</summary>
    public SamplingSettings? Judge { get; init; }

    public JudgeFormat Format { get; init; } = JudgeFormat.Repr;

    public RetryRule Retry { get; init; } = new();

    public int GenerationConcurrency { get; init; } = 1;

    public int JudgeConcurrency { get; init; } = 1;

    /// <summary>The names written to score_table.json's generation_model / evaluation_model.</summary>
    public string? GenerationModel { get; init; }

    public string? EvaluationModel { get; init; }

    /// <summary>How messages name the two backends (e.g. "judge backend --judge-endpoint URL (model M)"); null = the model names.</summary>
    public string? GenerationBackend { get; init; }

    public string? JudgeBackend { get; init; }

    public SamplingSettings GenerationOrDefault => Generation ?? SamplingSettings.Generation(Benchmark);

    public SamplingSettings JudgeOrDefault => Judge ?? SamplingSettings.Judge;

    public IEnumerable<OptionProblem> Problems() => new OptionChecks()
        .Require(Limit is null or > 0, "--limit", "must be > 0")
        .Require(GenerationConcurrency > 0, "--concurrency", "must be > 0")
        .Require(JudgeConcurrency > 0, "--judge-concurrency", "must be > 0")
        .Add(GenerationOrDefault.Problems("--"))
        .Add(JudgeOrDefault.Problems("--judge-"))
        .Problems;
}
