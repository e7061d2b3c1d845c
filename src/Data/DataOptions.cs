namespace Qwen35.Data;

/// <summary>
/// What to train on and how examples become batches: the recipe's <c>data:</c> section, bound from YAML as it is,
/// and what <c>trainer eval</c>'s flags fill in. Every data decision (files, row format, bad rows, loss mask,
/// length policy, packing, category weights) is read from here and nowhere else.
/// </summary>
public sealed record DataOptions
{
    /// <summary>Training files, globs or folders (JSONL or Parquet). A single string is accepted too.</summary>
    public List<string> Train { get; init; } = [];

    /// <summary>Evaluation file; when null, <see cref="EvalSplit"/> of the training set is held out.</summary>
    public string? Eval { get; init; }

    /// <summary>Fraction of the training conversations held out for evaluation when <see cref="Eval"/> is null.</summary>
    public double EvalSplit { get; init; } = 0.1;

    /// <summary>Row layout, or <see cref="RowFormat.Auto"/> (detected per row).</summary>
    public RowFormat Format { get; init; } = RowFormat.Auto;

    /// <summary>Longest example in tokens.</summary>
    public int MaxLength { get; init; } = 2048;

    /// <summary>What to do with longer examples: keep the start, or drop them.</summary>
    public OverLength Truncation { get; init; } = OverLength.Truncate;

    /// <summary>Pack several examples into each row (per-document attention, positions and state resets).</summary>
    public bool Packing { get; init; }

    /// <summary>Row length in tokens when packing; null = <see cref="MaxLength"/>.</summary>
    public int? PackLength { get; init; }

    /// <summary>Also train the assistant's &lt;think&gt;…&lt;/think&gt; block (false: training starts at the answer).</summary>
    public bool TrainThinkBlock { get; init; }

    /// <summary>Which assistant turns are trained (a message's own train flag wins).</summary>
    public AssistantTurns AssistantTurns { get; init; } = AssistantTurns.All;

    /// <summary>Whether a token straddling trained/untrained text is trained.</summary>
    public SeamRule SeamRule { get; init; } = SeamRule.Within;

    /// <summary>DeRTa RTO spans target the first token of this string.</summary>
    public string RtoRefusal { get; init; } = "申し訳ありません";

    /// <summary>Loss weight per category: each trained token's loss is multiplied by its category's weight and the
    /// step is normalised by the summed weights (missing categories weigh 1; 0 = context only).</summary>
    public Dictionary<string, double>? CategoryWeights { get; init; }

    /// <summary>Stop at the first bad row, or log it and go on.</summary>
    public BadRowPolicy OnBadRow { get; init; } = BadRowPolicy.Fail;

    // Derived values are methods, not properties, so that writing the recipe back to YAML writes only its keys.

    /// <summary>Tokens per batch row: the pack length when packing, else the longest example.</summary>
    public int RowLength() => Packing ? PackLength ?? MaxLength : MaxLength;

    /// <summary>The loss-mask part.</summary>
    public MaskOptions Mask() => new(TrainThinkBlock, AssistantTurns, SeamRule, RtoRefusal);

    /// <summary>The reader part.</summary>
    public DatasetReadOptions ReadOptions() => new(Format, OnBadRow);

    /// <summary>Every problem, keyed like the recipe (<c>max_length</c>, …); <paramref name="needsTrain"/> is false
    /// for evaluation, where the files come from elsewhere.</summary>
    public IEnumerable<OptionProblem> Problems(bool needsTrain = true) => new OptionChecks()
        .Require(!needsTrain || Train.Count > 0, "train", "name at least one training file, glob or folder")
        .Require(EvalSplit is >= 0 and < 1, "eval_split", $"must be in [0, 1), got {EvalSplit}")
        .Require(MaxLength >= 2, "max_length", $"must be >= 2, got {MaxLength}")
        .Require(PackLength is null or >= 2, "pack_length", $"must be >= 2, got {PackLength}")
        .Require(!(Packing && PackLength < MaxLength), "pack_length", "must be >= data.max_length so every example fits in a row")
        .Require(CategoryWeights?.Values.All(w => w >= 0 && double.IsFinite(w)) ?? true, "category_weights", "weights must be finite and >= 0")
        .Require(!string.IsNullOrEmpty(RtoRefusal), "rto_refusal", "must not be empty (RTO spans target its first token)")
        .Problems;
}
