using Qwen35.Models;
using Qwen35.Models.Config;

namespace Qwen35.Lora;

/// <summary>Describes an adapter file without loading a model (for `trainer inspect`).</summary>
public static class AdapterInspection
{
    /// <summary>
    /// The report an adapter would give once attached: per module rank, alpha, scaling and parameter count. Layer
    /// types come from <paramref name="config"/> when given, else from the block name (self_attn / linear_attn; an
    /// mlp borrows its layer's other modules, else "unknown"). Total parameters = base (from the config's parameter
    /// manifest) + adapter, or 0 (unknown) without a config.
    /// </summary>
    public static LoraReport Describe(PeftAdapterFile file, Qwen35TextConfig? config = null)
    {
        var byLayerGuess = new Dictionary<int, string>();
        foreach (var m in file.Modules)
            if (DecoderProjections.LayerIndexOf(m.ModuleName) is { } i)
            {
                if (m.ModuleName.Contains(".self_attn.", StringComparison.Ordinal)) byLayerGuess[i] = DecoderProjections.FullAttention;
                else if (m.ModuleName.Contains(".linear_attn.", StringComparison.Ordinal)) byLayerGuess[i] = DecoderProjections.LinearAttention;
            }
        var infos = file.Modules.Select(m =>
        {
            var layer = DecoderProjections.LayerIndexOf(m.ModuleName) ?? -1;
            var type = config != null && layer >= 0 && layer < config.LayerTypes.Count
                ? config.LayerTypes[layer]
                : byLayerGuess.GetValueOrDefault(layer, DecoderProjections.UnknownLayerType);
            var alpha = file.Options.AlphaFor(m.ModuleName);
            return new LoraModuleInfo(m.ModuleName, m.ModuleName[(m.ModuleName.LastIndexOf('.') + 1)..], layer, type, m.Rank, alpha,
                LoraOptions.Scaling(alpha, m.Rank, file.Options.UseRsLora), (int)m.A.shape[1], (int)m.B.shape[0]);
        }).ToList();
        var adapterParams = infos.Sum(i => i.ParameterCount);
        return new LoraReport(infos, adapterParams, config == null ? 0 : ParameterManifest.TotalParameters(config) + adapterParams);
    }

    /// <summary>
    /// Problems attaching the adapter to a model with <paramref name="config"/> would raise: modules the model lacks
    /// and A/B shapes that do not fit the projection, each naming the key. Empty when it fits.
    /// </summary>
    public static IReadOnlyList<string> CheckAgainst(PeftAdapterFile file, Qwen35TextConfig config)
    {
        var shapes = ParameterManifest.For(config).ToDictionary(e => e.Name, e => e.Shape);
        var problems = new List<string>();
        foreach (var m in file.Modules)
        {
            if (!shapes.TryGetValue(m.ModuleName + ".weight", out var w) || w.Length != 2)
            {
                problems.Add($"\"{m.KeyA}\": the model has no projection {m.ModuleName}");
                continue;
            }
            if (m.A.shape[1] != w[1]) problems.Add($"\"{m.KeyA}\": shape [{string.Join(",", m.A.shape)}], the projection needs [{m.Rank},{w[1]}]");
            if (m.B.shape[0] != w[0]) problems.Add($"\"{m.KeyB}\": shape [{string.Join(",", m.B.shape)}], the projection needs [{w[0]},{m.Rank}]");
        }
        return problems;
    }
}
