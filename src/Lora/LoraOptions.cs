namespace Qwen35.Lora;

/// <summary>How LoRA's A matrix is initialised (B always starts at zero, so a fresh adapter changes nothing).</summary>
public enum LoraInit
{
    /// <summary>PEFT's <c>init_lora_weights=true</c>: A ~ Kaiming-uniform(a=√5), i.e. U(-1/√in, 1/√in).</summary>
    Default,

    /// <summary>PEFT's <c>init_lora_weights="gaussian"</c>: A ~ N(0, σ = 1/r).</summary>
    Gaussian,
}

/// <summary>
/// LoRA hyper-parameters, named after PEFT's <c>LoraConfig</c> fields (<c>r</c>, <c>lora_alpha</c>, …) so a recipe and
/// the exported <c>adapter_config.json</c> say the same thing.
/// </summary>
public sealed record LoraOptions
{
    /// <summary>Rank r of every adapter unless <see cref="RankPattern"/> overrides it (PEFT <c>r</c>).</summary>
    public int Rank { get; init; } = 8;

    /// <summary>Scaling numerator (PEFT <c>lora_alpha</c>); the scale is alpha/r, or alpha/√r with rsLoRA.</summary>
    public double Alpha { get; init; } = 16;

    /// <summary>Dropout on the LoRA branch's input, active only in training mode (PEFT <c>lora_dropout</c>).</summary>
    public double Dropout { get; init; }

    /// <summary>Which projections get an adapter (PEFT <c>target_modules</c>).</summary>
    public LoraTargets TargetModules { get; init; } = LoraTargets.Names("q_proj", "k_proj", "v_proj", "o_proj");

    /// <summary>Decoder layer indices to adapt, null = all (PEFT <c>layers_to_transform</c>; ignored by PEFT for a
    /// regex <see cref="TargetModules"/>, and rejected here in that case so the recipe cannot silently mislead).</summary>
    public IReadOnlyList<int>? LayersToTransform { get; init; }

    /// <summary>Per-module rank overrides; keys are regexes matched like PEFT's <c>get_pattern_key</c>:
    /// <c>(.*\.)?(key)$</c> against the full module name, first match in ordinal key order wins.</summary>
    public IReadOnlyDictionary<string, int> RankPattern { get; init; } = new Dictionary<string, int>();

    /// <summary>Per-module alpha overrides, matched like <see cref="RankPattern"/>.</summary>
    public IReadOnlyDictionary<string, double> AlphaPattern { get; init; } = new Dictionary<string, double>();

    /// <summary>Rank-stabilised LoRA: scale alpha/√r instead of alpha/r (PEFT <c>use_rslora</c>).</summary>
    public bool UseRsLora { get; init; }

    /// <summary>Initialisation of A (PEFT <c>init_lora_weights</c>: <c>true</c> or <c>"gaussian"</c>).</summary>
    public LoraInit InitLoraWeights { get; init; } = LoraInit.Default;

    /// <summary>Run the LoRA matmuls in the base model's dtype (bf16) with the fp32 adapter weights cast per call,
    /// instead of in fp32 (PEFT's default for a bf16 base with fp32 adapters). Training state and the exported
    /// adapter stay fp32 either way; see <see cref="LoraAdapter.ComputeInInputDtype"/>. Not a PEFT field.</summary>
    public bool ComputeInModelDtype { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the field when a value is out of range.</summary>
    public void Validate()
    {
        if (Rank <= 0) throw new ArgumentException($"lora rank (r) must be positive, got {Rank}");
        if (!(Alpha > 0) || double.IsInfinity(Alpha)) throw new ArgumentException($"lora_alpha must be a positive number, got {Alpha}");
        if (!(Dropout >= 0 && Dropout < 1)) throw new ArgumentException($"lora_dropout must be in [0, 1), got {Dropout}");
        if (TargetModules is null) throw new ArgumentException("target_modules is required (PEFT has no default for Qwen3.5)");
        TargetModules.Validate();
        if (LayersToTransform != null)
        {
            if (TargetModules.Regex != null)
                throw new ArgumentException("layers_to_transform cannot be combined with a regex target_modules (PEFT ignores it there); put the layer numbers into the regex");
            if (LayersToTransform.Count == 0) throw new ArgumentException("layers_to_transform is empty: it would adapt nothing (use null for all layers)");
            foreach (var l in LayersToTransform)
                if (l < 0) throw new ArgumentException($"layers_to_transform contains a negative layer index {l}");
        }
        foreach (var (key, r) in RankPattern)
        {
            PatternKeys.ValidateRegex(key, "rank_pattern");
            if (r <= 0) throw new ArgumentException($"rank_pattern[\"{key}\"] must be a positive rank, got {r}");
        }
        foreach (var (key, a) in AlphaPattern)
        {
            PatternKeys.ValidateRegex(key, "alpha_pattern");
            if (!(a > 0) || double.IsInfinity(a)) throw new ArgumentException($"alpha_pattern[\"{key}\"] must be a positive number, got {a}");
        }
    }

    /// <summary>The rank of the module with this full name (<see cref="RankPattern"/> or <see cref="Rank"/>).</summary>
    public int RankFor(string moduleName) =>
        PatternKeys.Find(RankPattern.Keys, moduleName) is { } key ? RankPattern[key] : Rank;

    /// <summary>The alpha of the module with this full name (<see cref="AlphaPattern"/> or <see cref="Alpha"/>).</summary>
    public double AlphaFor(string moduleName) =>
        PatternKeys.Find(AlphaPattern.Keys, moduleName) is { } key ? AlphaPattern[key] : Alpha;

    /// <summary>The LoRA scale s of a module: alpha/r, or alpha/√r with rsLoRA (PEFT <c>update_layer</c>).</summary>
    public double ScalingFor(string moduleName) => Scaling(AlphaFor(moduleName), RankFor(moduleName), UseRsLora);

    /// <summary>alpha/r, or alpha/√r when <paramref name="rsLora"/>.</summary>
    public static double Scaling(double alpha, int rank, bool rsLora) => rsLora ? alpha / Math.Sqrt(rank) : alpha / rank;
}
