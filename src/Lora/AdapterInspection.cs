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
                if (m.ModuleName.Contains(".self_attn.", StringComparison.Ordinal)) byLayerGuess[i] = Qwen35TextConfig.FullAttention;
                else if (m.ModuleName.Contains(".linear_attn.", StringComparison.Ordinal)) byLayerGuess[i] = Qwen35TextConfig.LinearAttention;
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
            if (m.A.shape[1] != w[1]) problems.Add($"\"{m.KeyA}\": shape {Shapes.Format(m.A.shape)}, the projection needs {Shapes.Format([m.Rank, w[1]])}");
            if (m.B.shape[0] != w[0]) problems.Add($"\"{m.KeyB}\": shape {Shapes.Format(m.B.shape)}, the projection needs {Shapes.Format([w[0], m.Rank])}");
        }
        return problems;
    }

    /// <summary>
    /// Whether the adapter's <c>target_modules</c> / <c>layers_to_transform</c> agree with its own tensors and, with
    /// <paramref name="config"/>, with the model: a target entry (or regex) that selects none of the tensors, tensors
    /// that the targets do not select, and (with a model) projections the targets select that have no tensors. The
    /// loaders follow the tensors, so such an adapter still loads; but PEFT would attach to what the config selects, so
    /// the adapter means something else there (or a wrong config was copied next to the tensors). Empty when they agree.
    /// </summary>
    public static IReadOnlyList<string> CheckTargets(PeftAdapterFile file, Qwen35TextConfig? config = null)
    {
        var targets = file.Options.TargetModules;
        var layers = file.Options.LayersToTransform;
        var tensorModules = file.Modules.Select(m => m.ModuleName).ToList();
        var modelProjections = config is null ? null : ProjectionNames(config);
        bool Selected(string module) =>
            targets.Matches(module) && (layers is null || DecoderProjections.LayerIndexOf(module) is { } i && layers.Contains(i));
        string NotInModel(Func<string, bool> matches) =>
            modelProjections != null && !modelProjections.Any(matches) ? " and no module of the model" : "";

        var problems = new List<string>();
        if (targets.NameList is { } names)
            foreach (var name in names)
            {
                // PEFT's name-list rule (LoraTargets.Matches) for this one entry.
                bool Matches(string module) => module == name || module.EndsWith("." + name, StringComparison.Ordinal);
                if (!tensorModules.Any(Matches))
                    problems.Add($"target_modules entry \"{name}\" matches none of the adapter's tensors{NotInModel(Matches)}");
            }
        else if (targets.Regex is { } regex && !tensorModules.Any(targets.Matches))
            problems.Add($"target_modules regex \"{regex}\" matches none of the adapter's tensors{NotInModel(targets.Matches)}");

        var selection = $"target_modules {targets}" + (layers is null ? "" : $" (layers_to_transform {string.Join(", ", layers)})");
        var unselected = tensorModules.Where(m => !Selected(m)).ToList();
        if (unselected.Count > 0)
            problems.Add(unselected.Count == 1
                ? $"1 tensor module is not selected by {selection}: {FirstNames(unselected)}"
                : $"{unselected.Count} tensor modules are not selected by {selection}: {FirstNames(unselected)}");
        if (modelProjections != null)
        {
            var withTensors = tensorModules.ToHashSet(StringComparer.Ordinal);
            var bare = modelProjections.Where(m => Selected(m) && !withTensors.Contains(m)).ToList();
            if (bare.Count > 0)
                problems.Add(bare.Count == 1
                    ? $"1 projection of the model selected by {selection} has no tensors in the adapter: {FirstNames(bare)}"
                    : $"{bare.Count} projections of the model selected by {selection} have no tensors in the adapter: {FirstNames(bare)}");
        }
        return problems;
    }

    /// <summary>The LoRA-targetable projections of a model with this config (2-D weights inside a numbered layer),
    /// by module name, sorted.</summary>
    static List<string> ProjectionNames(Qwen35TextConfig config) =>
        ParameterManifest.For(config)
            .Where(e => e.Shape.Length == 2 && e.Name.EndsWith(".weight", StringComparison.Ordinal) && DecoderProjections.LayerIndexOf(e.Name) != null)
            .Select(e => e.Name[..^".weight".Length])
            .Order(StringComparer.Ordinal).ToList();

    static string FirstNames(IReadOnlyList<string> names) =>
        string.Join(", ", names.Take(5)) + (names.Count > 5 ? ", …" : "");
}
