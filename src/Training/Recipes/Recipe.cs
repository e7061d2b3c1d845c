using YamlDotNet.Serialization;

namespace Qwen35.Training.Recipes;

/// <summary>
/// A training recipe: everything one run needs, read from YAML with snake_case keys (see docs/training.md for every
/// key). Defaults live here and only here, so a recipe file states only what it changes.
/// </summary>
public sealed record Recipe
{
    /// <summary>Model folder (config.json + safetensors) or <c>builtin:tiny</c> (Qwen35TextConfig.Tiny(), seeded random weights).</summary>
    public string Model { get; init; } = "builtin:tiny";

    /// <summary>Tokenizer folder, or <c>builtin</c> (the byte-level tokenizer of the tiny model). Null = the model folder.</summary>
    public string? Tokenizer { get; init; }

    public LoraSection Lora { get; init; } = new();
    public DataSection Data { get; init; } = new();
    public ScheduleSection Schedule { get; init; } = new();

    /// <summary><c>fp32</c> or <c>bf16</c> (frozen base weights in bf16, LoRA parameters always fp32).</summary>
    public string Precision { get; init; } = "fp32";

    /// <summary><c>cpu</c> or <c>cuda</c>.</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>Recompute each decoder layer in the backward pass instead of keeping its activations.</summary>
    public bool ActivationCheckpointing { get; init; }

    /// <summary>Evaluate every N optimizer steps (0 = only at the end).</summary>
    public int EvalEvery { get; init; }

    /// <summary>Write a resumable checkpoint every N optimizer steps (0 = none).</summary>
    public int SaveEvery { get; init; }

    /// <summary>How many step checkpoints to keep (older ones are deleted).</summary>
    public int KeepLast { get; init; } = 2;

    /// <summary>Log a metrics line every N optimizer steps.</summary>
    public int LogEvery { get; init; } = 1;

    /// <summary>libtorch intra-op threads on CPU (0 = libtorch's default, one per core).</summary>
    public int CpuThreads { get; init; }

    /// <summary>Where the adapter, metrics, logs and checkpoints go.</summary>
    public string OutputDir { get; init; } = "runs/latest";
}

/// <summary>LoRA settings; maps one-to-one onto <c>Qwen35.Lora.LoraOptions</c>.</summary>
public sealed record LoraSection
{
    public int Rank { get; init; } = 16;
    public double Alpha { get; init; } = 32;
    public double Dropout { get; init; }

    /// <summary>Module-name suffixes (list), <c>all-linear</c>, or one regular expression (a single string).</summary>
    public List<string> TargetModules { get; init; } =
        ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

    /// <summary>Layer indices to adapt; null = all layers.</summary>
    public List<int>? LayersToTransform { get; init; }

    /// <summary>Per-module rank overrides (PEFT rank_pattern: key = name suffix or regex).</summary>
    public Dictionary<string, int>? RankPattern { get; init; }

    /// <summary>Per-module alpha overrides (PEFT alpha_pattern).</summary>
    public Dictionary<string, double>? AlphaPattern { get; init; }

    /// <summary>Scale by alpha/sqrt(r) instead of alpha/r (rsLoRA).</summary>
    [YamlMember(Alias = "use_rslora")]
    public bool UseRsLora { get; init; }

    /// <summary>Dtype of the LoRA matmuls: <c>fp32</c> (PEFT's numerics for fp32 adapters on a bf16 base) or
    /// <c>model</c> (the base's dtype, fp32 adapter weights cast per call). Same thing with an fp32 base.</summary>
    public string ComputeDtype { get; init; } = "fp32";
}

/// <summary>What to train on and how examples become batches.</summary>
public sealed record DataSection
{
    /// <summary>Training files, globs or folders (JSONL or Parquet). A single string is accepted too.</summary>
    public List<string> Train { get; init; } = [];

    /// <summary>Evaluation file; when null, <see cref="EvalSplit"/> of the training set is held out.</summary>
    public string? Eval { get; init; }

    /// <summary>Fraction of the training conversations held out for evaluation when <see cref="Eval"/> is null.</summary>
    public double EvalSplit { get; init; } = 0.1;

    /// <summary>Row format: <c>auto</c> (detected per row), <c>messages</c>, <c>share_gpt</c>, <c>prompt_completion</c>,
    /// <c>text_output</c>, <c>alpaca</c>, <c>prefix_text</c>, <c>question_answer_turns</c>.</summary>
    public string Format { get; init; } = "auto";

    /// <summary>Longest example in tokens.</summary>
    public int MaxLength { get; init; } = 2048;

    /// <summary>What to do with longer examples: <c>truncate</c> (keep the start) or <c>drop</c>.</summary>
    public string Truncation { get; init; } = "truncate";

    /// <summary>Pack several examples into each row (block-diagonal attention, per-document state resets).</summary>
    public bool Packing { get; init; }

    /// <summary>Row length in tokens when packing; null = <see cref="MaxLength"/>.</summary>
    public int? PackLength { get; init; }

    /// <summary>Also train the assistant's &lt;think&gt;…&lt;/think&gt; block (false: training starts at the answer).</summary>
    public bool TrainThinkBlock { get; init; }

    /// <summary>Which assistant turns are trained: <c>all</c> or <c>last</c> (a message's own train flag wins).</summary>
    public string AssistantTurns { get; init; } = "all";

    /// <summary>A token straddling trained/untrained text is trained if <c>within</c> (all its characters are
    /// trained) or <c>overlap</c> (any is).</summary>
    public string SeamRule { get; init; } = "within";

    /// <summary>DeRTa RTO spans target the first token of this string.</summary>
    public string RtoRefusal { get; init; } = "申し訳ありません";

    /// <summary>Loss weight per category: each trained token's loss is multiplied by its category's weight and the
    /// step is normalised by the summed weights (missing categories weigh 1; 0 = context only).</summary>
    public Dictionary<string, double>? CategoryWeights { get; init; }

    /// <summary><c>fail</c> (stop at the first bad row) or <c>skip</c> (log it and go on).</summary>
    public string OnBadRow { get; init; } = "fail";
}

/// <summary>Optimisation schedule.</summary>
public sealed record ScheduleSection
{
    /// <summary>Passes over the training data; ignored when <see cref="MaxSteps"/> is set.</summary>
    public int Epochs { get; init; } = 1;

    /// <summary>Optimizer steps to run; null = as many as <see cref="Epochs"/> gives.</summary>
    public int? MaxSteps { get; init; }

    public int MicroBatchSize { get; init; } = 1;
    public int GradAccum { get; init; } = 1;
    public double LearningRate { get; init; } = 2e-4;

    /// <summary>Linear warm-up steps; when null, <see cref="WarmupRatio"/> of the total steps.</summary>
    public int? WarmupSteps { get; init; }

    public double WarmupRatio { get; init; } = 0.03;

    /// <summary><c>cosine</c>, <c>linear</c> or <c>constant</c> (after warm-up).</summary>
    public string LrScheduler { get; init; } = "cosine";

    /// <summary>Floor of the decay as a fraction of the peak learning rate.</summary>
    public double MinLrRatio { get; init; }

    public double WeightDecay { get; init; }
    public double Beta1 { get; init; } = 0.9;
    public double Beta2 { get; init; } = 0.999;
    public double Eps { get; init; } = 1e-8;

    /// <summary>Clip the global gradient norm to this (0 = no clipping).</summary>
    public double MaxGradNorm { get; init; } = 1.0;

    /// <summary>Seeds weight initialisation, LoRA init, dropout, shuffling and the eval split.</summary>
    public long Seed { get; init; } = 42;

    /// <summary>Stop after this many optimizer steps were skipped for a NaN/inf loss or gradient.</summary>
    public int MaxNonfiniteSteps { get; init; } = 5;
}
