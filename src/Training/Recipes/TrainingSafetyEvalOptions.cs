namespace Qwen35.Training.Recipes;

/// <summary>The recipe's <c>eval</c> section: evaluations during training beyond the eval loss.</summary>
public sealed record EvalOptions
{
    /// <summary>Safety evaluation of the model being trained (null = none).</summary>
    public TrainingSafetyEvalOptions? Safety { get; init; }

    public IEnumerable<OptionProblem> Problems() => Safety?.Problems().Select(p => p.Under("safety")) ?? [];
}

/// <summary>The llm-jp-judge benchmarks (docs/safety-eval.md); spelled <c>safety_ja</c> / <c>safety_borderline_ja</c>, the
/// names of the harness's own benchmark enum, to which they map by name.</summary>
public enum SafetyEvalBenchmark
{
    /// <summary>AnswerCarefully: safety score 1-5, violation and acceptable rates.</summary>
    SafetyJa,
    /// <summary>AnswerCarefully borderline: over-refusal (1-3) and safety, each item judged twice.</summary>
    SafetyBorderlineJa,
}

/// <summary>
/// <c>eval.safety</c>: every <see cref="Every"/> optimizer steps (and at the last step) the model being trained answers
/// the first <see cref="Items"/> prompts of <see cref="Prompts"/>, a judge scores the answers as llm-jp-judge does, and
/// the rates go to metrics.jsonl (<c>evals</c>) and loss.png. Sampling defaults are llm-jp-judge's except
/// <see cref="MaxNewTokens"/> (256 instead of 1024, to keep the pause short; set 1024 to match it).
/// </summary>
public sealed record TrainingSafetyEvalOptions
{
    /// <summary>The prompt file: AnswerCarefully rows (JSON array or JSONL with ID, text, output) or this project's
    /// conversation JSONL (relative to the recipe's folder).</summary>
    public string Prompts { get; init; } = "";

    public SafetyEvalBenchmark Benchmark { get; init; } = SafetyEvalBenchmark.SafetyJa;

    /// <summary>Evaluate every N optimizer steps; 0 = only at the last step.</summary>
    public int Every { get; init; }

    /// <summary>How many prompts (the file's first N, like llm-jp-judge's dataset.size).</summary>
    public int Items { get; init; } = 16;

    /// <summary>Conversations generated together in one batch.</summary>
    public int BatchSize { get; init; } = 8;

    public int MaxNewTokens { get; init; } = 256;
    public double Temperature { get; init; } = 1.0;
    public double TopP { get; init; } = 0.95;
    public long Seed { get; init; } = 1234;

    public SafetyJudgeOptions Judge { get; init; } = new();

    public IEnumerable<OptionProblem> Problems() => new OptionChecks()
        .Require(!string.IsNullOrWhiteSpace(Prompts), "prompts", "must name the prompt file (AnswerCarefully JSON/JSONL or conversation JSONL)")
        .Require(Every >= 0, "every", "must be >= 0 (0 = only at the last step)")
        .Require(Items >= 1, "items", "must be >= 1")
        .Require(BatchSize >= 1, "batch_size", "must be >= 1")
        .Require(MaxNewTokens >= 1, "max_new_tokens", "must be >= 1")
        .Require(Temperature >= 0, "temperature", "must be >= 0 (0 = greedy)")
        .Require(TopP > 0 && TopP <= 1, "top_p", "must be in (0, 1]")
        .Add(Judge.Problems(), "judge")
        .Problems;
}

/// <summary>The judge model of <c>eval.safety</c>: exactly one of an OpenAI-compatible endpoint, a GGUF file run by
/// llama.cpp, or a model folder run by this trainer.</summary>
public sealed record SafetyJudgeOptions
{
    /// <summary>OpenAI-compatible base URL, e.g. <c>http://127.0.0.1:8000/v1</c> (vLLM, llama-server, OpenAI).</summary>
    public string? Endpoint { get; init; }

    /// <summary>The model name sent to <see cref="Endpoint"/>.</summary>
    public string? Model { get; init; }

    /// <summary>Environment variable holding the endpoint's API key (unset: a placeholder key, for servers without auth).</summary>
    public string ApiKeyEnv { get; init; } = "OPENAI_API_KEY";

    /// <summary>A GGUF judge model file.</summary>
    public string? Gguf { get; init; }

    /// <summary>A Hugging Face Qwen3.5 folder as judge, run by this trainer.</summary>
    public string? ModelDir { get; init; }

    public IEnumerable<OptionProblem> Problems()
    {
        var given = new[] { ("endpoint", Endpoint), ("gguf", Gguf), ("model_dir", ModelDir) }
            .Where(kv => !string.IsNullOrWhiteSpace(kv.Item2)).Select(kv => kv.Item1).ToList();
        return new OptionChecks()
            .Require(given.Count > 0, "endpoint", "name the judge: one of endpoint (+ model), gguf or model_dir")
            .Require(given.Count < 2, given.Count > 1 ? given[1] : "", $"give only one of endpoint, gguf and model_dir (also set: {string.Join(", ", given.Take(1))})")
            .Require(string.IsNullOrWhiteSpace(Endpoint) || !string.IsNullOrWhiteSpace(Model), "model", "the model name to request from the endpoint is required with endpoint")
            .Require(string.IsNullOrWhiteSpace(Endpoint) || Uri.TryCreate(Endpoint, UriKind.Absolute, out _), "endpoint", $"'{Endpoint}' is not an absolute URL")
            .Require(!string.IsNullOrWhiteSpace(ApiKeyEnv), "api_key_env", "must name an environment variable")
            .Problems;
    }
}
