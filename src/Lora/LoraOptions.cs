using YamlDotNet.Serialization;

namespace Qwen35.Lora;

/// <summary>How LoRA's A matrix is initialised (B always starts at zero, so a fresh adapter changes nothing).</summary>
public enum LoraInit
{
    /// <summary>PEFT's <c>init_lora_weights=true</c>: A ~ Kaiming-uniform(a=√5), i.e. U(-1/√in, 1/√in).</summary>
    Default,

    /// <summary>PEFT's <c>init_lora_weights="gaussian"</c>: A ~ N(0, σ = 1/r).</summary>
    Gaussian,
}

/// <summary>Dtype of the LoRA matmuls.</summary>
public enum LoraComputeDtype
{
    /// <summary>fp32, PEFT's numerics for fp32 adapters on a bf16 base (the input is cast up per call).</summary>
    Fp32,

    /// <summary>The base model's dtype (bf16), the fp32 adapter weights cast per call; see
    /// <see cref="LoraAdapter.ComputeInInputDtype"/>. Training state and the exported adapter stay fp32.</summary>
    Model,
}

/// <summary>
/// LoRA hyper-parameters: the recipe's <c>lora:</c> section (bound from YAML as it is) and what the library takes.
/// Named after PEFT's <c>LoraConfig</c> fields where the recipe key differs only in spelling (<c>rank</c> is PEFT's
/// <c>r</c>, <c>alpha</c> its <c>lora_alpha</c>), so a recipe and the exported <c>adapter_config.json</c> say the same
/// thing. The defaults are the trainer's (rank 16, alpha 32, every projection of the attention and MLP blocks).
/// </summary>
public sealed record LoraOptions
{
    /// <summary>Rank r of every adapter unless <see cref="RankPattern"/> overrides it (PEFT <c>r</c>).</summary>
    public int Rank { get; init; } = 16;

    /// <summary>Scaling numerator (PEFT <c>lora_alpha</c>); the scale is alpha/r, or alpha/√r with rsLoRA.</summary>
    public double Alpha { get; init; } = 32;

    /// <summary>Dropout on the LoRA branch's input, active only in training mode (PEFT <c>lora_dropout</c>).</summary>
    public double Dropout { get; init; }

    /// <summary>Which projections get an adapter (PEFT <c>target_modules</c>): a YAML list of module-name suffixes,
    /// or one string, <c>all-linear</c> or a regular expression matched against the whole module name.</summary>
    public LoraTargets TargetModules { get; init; } =
        LoraTargets.Names("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj");

    /// <summary>Decoder layer indices to adapt, null = all (PEFT <c>layers_to_transform</c>; ignored by PEFT for a
    /// regex <see cref="TargetModules"/>, and rejected here in that case so the recipe cannot silently mislead).</summary>
    public List<int>? LayersToTransform { get; init; }

    /// <summary>Per-module rank overrides; keys are regexes matched like PEFT's <c>get_pattern_key</c>:
    /// <c>(.*\.)?(key)$</c> against the full module name, first match in ordinal key order wins.</summary>
    public Dictionary<string, int> RankPattern { get; init; } = [];

    /// <summary>Per-module alpha overrides, matched like <see cref="RankPattern"/>.</summary>
    public Dictionary<string, double> AlphaPattern { get; init; } = [];

    /// <summary>Rank-stabilised LoRA: scale alpha/√r instead of alpha/r (PEFT <c>use_rslora</c>).</summary>
    [YamlMember(Alias = "use_rslora")]
    public bool UseRsLora { get; init; }

    /// <summary>Initialisation of A (PEFT <c>init_lora_weights</c>: <c>true</c> or <c>"gaussian"</c>).</summary>
    public LoraInit InitLoraWeights { get; init; } = LoraInit.Default;

    /// <summary>Dtype of the LoRA matmuls (not a PEFT field; the same thing with an fp32 base).</summary>
    public LoraComputeDtype ComputeDtype { get; init; } = LoraComputeDtype.Fp32;

    /// <summary>Every problem, keyed like the recipe (<c>rank</c>, <c>target_modules</c>, …); empty when usable.</summary>
    public IEnumerable<OptionProblem> Problems()
    {
        var c = new OptionChecks()
            .Require(Rank > 0, "rank", $"must be a positive integer, got {Rank}")
            .Require(Alpha > 0 && double.IsFinite(Alpha), "alpha", $"must be a positive number, got {Alpha}")
            .Require(Dropout is >= 0 and < 1, "dropout", $"must be in [0, 1), got {Dropout}");
        if (TargetModules is null) c.Require(false, "target_modules", "is required (PEFT has no default for Qwen3.5)");
        else c.Add(TargetModules.Problems().Select(m => new OptionProblem("target_modules", m)));
        if (LayersToTransform != null)
        {
            c.Require(TargetModules?.Regex == null, "layers_to_transform",
                "cannot be combined with a regex target_modules (PEFT ignores it there); put the layer numbers into the regex");
            c.Require(LayersToTransform.Count > 0, "layers_to_transform", "is empty: it would adapt nothing (leave it out for all layers)");
            foreach (var l in LayersToTransform) c.Require(l >= 0, "layers_to_transform", $"contains a negative layer index {l}");
        }
        foreach (var (key, r) in RankPattern)
        {
            c.Add(PatternKeys.RegexProblems(key).Select(m => new OptionProblem("rank_pattern", m)));
            c.Require(r > 0, $"rank_pattern.{key}", $"must be a positive rank, got {r}");
        }
        foreach (var (key, a) in AlphaPattern)
        {
            c.Add(PatternKeys.RegexProblems(key).Select(m => new OptionProblem("alpha_pattern", m)));
            c.Require(a > 0 && double.IsFinite(a), $"alpha_pattern.{key}", $"must be a positive number, got {a}");
        }
        return c.Problems;
    }

    /// <summary>Throws <see cref="UserInputException"/> listing every problem (for options built in code or read
    /// from an adapter_config.json; recipes report them with their YAML lines instead).</summary>
    public void Validate() => OptionChecks.ThrowIfAny(Problems().Select(p => p.Under("lora")), "invalid LoRA options");

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
