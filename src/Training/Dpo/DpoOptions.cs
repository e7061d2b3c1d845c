namespace Qwen35.Training.Dpo;

/// <summary>What a training run optimises: next-token cross-entropy on the data (SFT) or a preference objective.</summary>
public enum TrainingObjectiveKind
{
    Sft,
    Dpo,
}

/// <summary>The preference loss (TRL's <c>loss_type</c> names).</summary>
public enum DpoLossType
{
    /// <summary>DPO: −log σ(β·z), with cDPO's label smoothing.</summary>
    Sigmoid,
    /// <summary>IPO: (z − 1/(2β))², on log-probabilities averaged over the completion tokens (as TRL).</summary>
    Ipo,
}

/// <summary>
/// The recipe's <c>dpo:</c> section (used when <c>objective: dpo</c>). Defaults are TRL's <c>DPOConfig</c> defaults, so
/// a recipe that sets nothing here trains what TRL trains. docs/dpo.md has the formulas.
/// </summary>
public sealed record DpoOptions
{
    /// <summary>β: how far the policy may move from the reference (larger = stays closer). TRL's default 0.1.</summary>
    public double Beta { get; init; } = 0.1;

    public DpoLossType LossType { get; init; } = DpoLossType.Sigmoid;

    /// <summary>cDPO's ε: the assumed probability that a pair's preference label is flipped (sigmoid loss only).</summary>
    public double LabelSmoothing { get; init; }

    /// <summary>Weight of an NLL term on the chosen answer (TRL's <c>rpo_alpha</c>); null = none.</summary>
    public double? RpoAlpha { get; init; }

    /// <summary>A PEFT adapter folder (e.g. the SFT adapter): training starts from a copy of it and it stays the frozen
    /// reference. Null = the reference is the base model (the adapter switched off).</summary>
    public string? ReferenceAdapter { get; init; }

    /// <summary>Longest prompt + completion in tokens; the prompt is cut from the left to fit (as TRL). Null = data.max_length.</summary>
    public int? MaxLength { get; init; }

    /// <summary>Every problem, keyed like the recipe (<c>beta</c>, …).</summary>
    public IEnumerable<OptionProblem> Problems() => new OptionChecks()
        .Require(Beta > 0 && double.IsFinite(Beta), "beta", "must be a finite number > 0")
        .Require(LabelSmoothing is >= 0 and < 0.5, "label_smoothing", "must be in [0, 0.5)")
        .Require(LabelSmoothing == 0 || LossType == DpoLossType.Sigmoid, "label_smoothing", "applies to loss_type sigmoid only")
        .Require(RpoAlpha is null || (RpoAlpha >= 0 && double.IsFinite(RpoAlpha.Value)), "rpo_alpha", "must be a finite number >= 0")
        .Require(ReferenceAdapter is null || ReferenceAdapter.Trim().Length > 0, "reference_adapter", "must not be empty (leave it out for the base model)")
        .Require(MaxLength is null or >= 2, "max_length", "must be >= 2")
        .Problems;
}
