using System.Text.RegularExpressions;
using Qwen35.Models.Config;
using Qwen35.Models.Modules;
using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Lora;

/// <summary>A projection of a decoder layer that LoRA may target, with what the report groups it by.</summary>
public sealed record DecoderProjection(string Name, Projection Module, int LayerIndex, string LayerType)
{
    /// <summary>The last name segment (q_proj, in_proj_qkv, down_proj, …).</summary>
    public string ShortName => Name[(Name.LastIndexOf('.') + 1)..];
}

/// <summary>Finds the LoRA-targetable projections of a model by walking its module tree.</summary>
public static partial class DecoderProjections
{
    public const string UnknownLayerType = "unknown";

    // PEFT's layer-index rule when layers_pattern is null: the number in the last "<name>.<digits>." of the key.
    [GeneratedRegex(@"^.*\.[^.]*\.(\d+)\.")]
    private static partial Regex LayerIndexRegex();

    /// <summary>The layer index PEFT would read from a module name, or null.</summary>
    public static int? LayerIndexOf(string moduleName)
    {
        var m = LayerIndexRegex().Match(moduleName);
        return m.Success ? int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) : null;
    }

    /// <summary>
    /// Every <see cref="Projection"/> inside a numbered decoder layer (so never <c>lm_head</c>, which has no layer
    /// index), in module-name order, with its layer index and layer type (from the presence of <c>linear_attn</c> or
    /// <c>self_attn</c> in that layer).
    /// </summary>
    public static IReadOnlyList<DecoderProjection> Find(nn.Module model)
    {
        var modules = model.named_modules().ToList();
        var layerTypes = new Dictionary<string, string>(); // layer prefix ("…layers.3") -> type
        foreach (var (name, _) in modules)
        {
            if (name.EndsWith(".linear_attn", StringComparison.Ordinal)) layerTypes[name[..^".linear_attn".Length]] = Qwen35TextConfig.LinearAttention;
            else if (name.EndsWith(".self_attn", StringComparison.Ordinal)) layerTypes[name[..^".self_attn".Length]] = Qwen35TextConfig.FullAttention;
        }
        var result = new List<DecoderProjection>();
        foreach (var (name, module) in modules)
        {
            if (module is not Projection p) continue;
            var m = LayerIndexRegex().Match(name);
            if (!m.Success) continue;
            var layerPrefix = name[..(m.Length - 1)];
            var index = int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
            result.Add(new DecoderProjection(name, p, index, layerTypes.GetValueOrDefault(layerPrefix, UnknownLayerType)));
        }
        result.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
        return result;
    }
}
