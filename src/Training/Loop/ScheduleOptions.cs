namespace Qwen35.Training.Loop;

/// <summary>The shape of the learning-rate decay after warm-up.</summary>
public enum LrSchedulerKind
{
    Cosine,
    Linear,
    Constant,
}

/// <summary>
/// Optimisation schedule: the recipe's <c>schedule:</c> section, bound from YAML as it is. Batching (micro-batch size,
/// gradient accumulation), AdamW, warm-up and decay, clipping, the seed and the NaN guard.
/// </summary>
public sealed record ScheduleOptions
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

    /// <summary>The decay after warm-up.</summary>
    public LrSchedulerKind LrScheduler { get; init; } = LrSchedulerKind.Cosine;

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

    /// <summary>Warm-up length for a run of <paramref name="totalSteps"/>.</summary>
    public int WarmupFor(int totalSteps) => LrSchedule.WarmupFor(WarmupSteps, WarmupRatio, totalSteps);

    /// <summary>The learning-rate schedule of a run of <paramref name="totalSteps"/>.</summary>
    public LrSchedule LrScheduleFor(int totalSteps) => new(LearningRate, WarmupFor(totalSteps), totalSteps, LrScheduler, MinLrRatio);

    /// <summary>Every problem, keyed like the recipe (<c>learning_rate</c>, …).</summary>
    public IEnumerable<OptionProblem> Problems() => new OptionChecks()
        .Require(Epochs >= 1, "epochs", "must be >= 1")
        .Require(MaxSteps is null or >= 1, "max_steps", "must be >= 1")
        .Require(MicroBatchSize >= 1, "micro_batch_size", "must be >= 1")
        .Require(GradAccum >= 1, "grad_accum", "must be >= 1")
        .Require(LearningRate > 0 && double.IsFinite(LearningRate), "learning_rate", "must be a finite number > 0")
        .Require(WarmupSteps is null or >= 0, "warmup_steps", "must be >= 0")
        .Require(WarmupRatio is >= 0 and < 1, "warmup_ratio", "must be in [0, 1)")
        .Require(MinLrRatio is >= 0 and <= 1, "min_lr_ratio", "must be in [0, 1]")
        .Require(WeightDecay >= 0, "weight_decay", "must be >= 0")
        .Require(Beta1 is >= 0 and < 1, "beta1", "must be in [0, 1)")
        .Require(Beta2 is >= 0 and < 1, "beta2", "must be in [0, 1)")
        .Require(Eps > 0, "eps", "must be > 0")
        .Require(MaxGradNorm >= 0, "max_grad_norm", "must be >= 0 (0 = no clipping)")
        .Require(MaxNonfiniteSteps >= 1, "max_nonfinite_steps", "must be >= 1")
        .Problems;
}
