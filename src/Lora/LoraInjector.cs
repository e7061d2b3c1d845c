using Qwen35.Models.Modules;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using Qwen35.Models;

namespace Qwen35.Lora;

/// <summary>Attaches LoRA adapters to a model's projections and freezes everything else.</summary>
public static class LoraInjector
{
    /// <summary>
    /// Adds a fresh adapter (A initialised per <see cref="LoraOptions.InitLoraWeights"/> from <paramref name="seed"/>,
    /// B = 0) to every projection selected by <paramref name="options"/>, then freezes every other parameter.
    /// Throws <see cref="ArgumentException"/> when a target matches nothing, listing the names that exist.
    /// </summary>
    public static LoraReport Apply(nn.Module model, LoraOptions options, long seed)
    {
        options.Validate();
        var selected = Select(DecoderProjections.Find(model), options);
        if (selected.FirstOrDefault(p => p.Module.Adapter != null) is { } taken)
            throw new InvalidOperationException($"{taken.Name} already has an adapter; apply LoRA to a fresh model");
        using var generator = new Generator((ulong)seed);
        // Sorted module order (Select returns it) so one seed gives the same adapter on every run.
        foreach (var p in selected)
        {
            var r = options.RankFor(p.Name);
            var a = InitA(r, p.Module.InFeatures, options.InitLoraWeights, generator);
            using var b = zeros(p.Module.OutFeatures, r, dtype: ScalarType.Float32);
            var adapter = Attach(p, a, b, options.AlphaFor(p.Name), options.ScalingFor(p.Name), options.Dropout);
            adapter.ComputeInInputDtype = options.ComputeDtype == LoraComputeDtype.Model;
            a.Dispose(); // Attach copied it onto the weight's device
        }
        FreezeAllButAdapters(model);
        return Report(model);
    }

    /// <summary>
    /// Attaches the PEFT LoRA adapter in <paramref name="dir"/> to the model (for inference or to continue training):
    /// every module named in the weights file gets its A/B (fp32, trainable), everything else is frozen. A key
    /// naming a module the model lacks, or a shape that does not fit, is an <see cref="AdapterFormatException"/>
    /// naming the key.
    /// </summary>
    public static LoadedAdapter LoadAdapter(nn.Module model, string dir)
    {
        using var file = PeftAdapter.Load(dir);
        var projections = DecoderProjections.Find(model).ToDictionary(p => p.Name);
        var weights = Path.Combine(dir, PeftAdapter.WeightsFileName);
        // Check every module first so a bad file leaves the model untouched.
        foreach (var m in file.Modules)
        {
            if (!projections.TryGetValue(m.ModuleName, out var p))
                throw new AdapterFormatException($"{weights}: key \"{m.KeyA}\" names module \"{m.ModuleName}\", which this model does not have " +
                                                 $"(it has {projections.Count} projections, e.g. {projections.Keys.FirstOrDefault()})");
            if (p.Module.Adapter != null)
                throw new InvalidOperationException($"{m.ModuleName} already has an adapter; load into a fresh model");
            if (m.A.shape[1] != p.Module.InFeatures)
                throw new AdapterFormatException($"{weights}: \"{m.KeyA}\" has shape {Shapes.Format(m.A.shape)} but {m.ModuleName} has {p.Module.InFeatures} inputs (expected {Shapes.Format([m.Rank, p.Module.InFeatures])})");
            if (m.B.shape[0] != p.Module.OutFeatures)
                throw new AdapterFormatException($"{weights}: \"{m.KeyB}\" has shape {Shapes.Format(m.B.shape)} but {m.ModuleName} has {p.Module.OutFeatures} outputs (expected {Shapes.Format([p.Module.OutFeatures, m.Rank])})");
        }
        var options = file.Options;
        foreach (var m in file.Modules)
        {
            var alpha = options.AlphaFor(m.ModuleName);
            Attach(projections[m.ModuleName], m.A, m.B, alpha, LoraOptions.Scaling(alpha, m.Rank, options.UseRsLora), options.Dropout);
        }
        FreezeAllButAdapters(model);
        var warnings = AdapterPortability.Check(options, file.Modules.Select(m => (m.ModuleName, m.Rank)));
        return new LoadedAdapter(options, file.BaseModelNameOrPath, Report(model), warnings);
    }

    /// <summary>The projections <paramref name="options"/> selects, in module-name order (no side effects).</summary>
    public static IReadOnlyList<DecoderProjection> Select(IReadOnlyList<DecoderProjection> candidates, LoraOptions options)
    {
        var targets = options.TargetModules;
        if (candidates.Count == 0) throw new ArgumentException("the model has no decoder projections to adapt");
        string Existing() => "existing projection names: " + string.Join(", ", candidates.Select(c => c.ShortName).Distinct().Order(StringComparer.Ordinal)) +
                             $" (full names like {candidates[0].Name})";
        if (targets.NameList != null)
            foreach (var n in targets.NameList)
                if (!candidates.Any(c => c.Name == n || c.Name.EndsWith("." + n, StringComparison.Ordinal)))
                    throw new UserInputException($"target_modules entry \"{n}\" matches no projection of the model; {Existing()}");
        var matched = candidates.Where(c => targets.Matches(c.Name)).ToList();
        if (matched.Count == 0) throw new UserInputException($"target_modules {targets} matches no projection of the model; {Existing()}");
        if (options.LayersToTransform is { } layers)
        {
            var layerCount = candidates.Max(c => c.LayerIndex) + 1;
            var outOfRange = layers.Where(l => l >= layerCount).ToList();
            if (outOfRange.Count > 0)
                throw new UserInputException($"layers_to_transform has {string.Join(", ", outOfRange)} but the model has layers 0-{layerCount - 1}");
            matched = matched.Where(c => layers.Contains(c.LayerIndex)).ToList();
            if (matched.Count == 0)
                throw new UserInputException($"target_modules {targets} matches no projection in layers_to_transform [{string.Join(",", layers)}]; {Existing()}");
        }
        return matched;
    }

    /// <summary>All adapters attached to the model, in module-name order.</summary>
    public static IReadOnlyList<LoraAdapter> Adapters(nn.Module model) =>
        DecoderProjections.Find(model).Select(p => p.Module.Adapter).OfType<LoraAdapter>().ToList();

    /// <summary>The LoRA parameters (A and B of every adapter, in module-name order): what the optimizer updates.</summary>
    public static IReadOnlyList<Parameter> Parameters(nn.Module model) =>
        Adapters(model).SelectMany(a => new[] { a.LoraA.weight, a.LoraB.weight }).ToList();

    /// <summary>Switches every adapter of the model off until the result is disposed (then back to how each was), so
    /// the model computes the base model's outputs: the DPO reference without a second copy of the model.</summary>
    public static IDisposable Disable(nn.Module model)
    {
        var adapters = Adapters(model).Select(a => (Adapter: a, Was: a.Enabled)).ToList();
        foreach (var (a, _) in adapters) a.Enabled = false;
        return new Restore(() =>
        {
            foreach (var (a, was) in adapters) a.Enabled = was;
        });
    }

    sealed class Restore(Action undo) : IDisposable
    {
        public void Dispose() => undo();
    }

    /// <summary>Sets requires_grad on the LoRA parameters and clears it on every other parameter.</summary>
    public static void FreezeAllButAdapters(nn.Module model)
    {
        foreach (var (_, p) in model.named_parameters()) p.requires_grad = false;
        foreach (var a in Adapters(model))
        {
            a.LoraA.weight.requires_grad = true;
            a.LoraB.weight.requires_grad = true;
        }
    }

    /// <summary>The trainable-parameter report of the model's current adapters.</summary>
    public static LoraReport Report(nn.Module model)
    {
        var infos = DecoderProjections.Find(model).Where(p => p.Module.Adapter is LoraAdapter).Select(p =>
        {
            var a = (LoraAdapter)p.Module.Adapter!;
            return new LoraModuleInfo(p.Name, p.ShortName, p.LayerIndex, p.LayerType, a.Rank, a.Alpha, a.Scaling,
                p.Module.InFeatures, p.Module.OutFeatures);
        }).ToList();
        long total = 0, trainable = 0;
        foreach (var (_, p) in model.named_parameters())
        {
            total += p.numel();
            if (p.requires_grad) trainable += p.numel();
        }
        return new LoraReport(infos, trainable, total);
    }

    /// <summary>Creates the adapter of one projection from given A/B values (copied to fp32 on the weight's device).</summary>
    public static LoraAdapter Attach(DecoderProjection p, Tensor a, Tensor b, double alpha, double scaling, double dropout)
    {
        var device = p.Module.weight.device;
        var adapter = new LoraAdapter(p.Name, p.Module,
            a.to(ScalarType.Float32, device, copy: true).contiguous(), b.to(ScalarType.Float32, device, copy: true).contiguous(),
            alpha, scaling, dropout);
        // New modules start in training mode; follow the projection so an eval-mode model gets no LoRA dropout.
        if (!p.Module.training)
        {
            adapter.LoraA.eval();
            adapter.LoraB.eval();
        }
        p.Module.AttachAdapter(adapter);
        return adapter;
    }

    static Tensor InitA(int rank, int inFeatures, LoraInit init, Generator generator)
    {
        using var scope = NewDisposeScope();
        Tensor a = init switch
        {
            // kaiming_uniform_(a=√5) on [r, in]: gain √(2/(1+5)), bound = gain·√3/√fan_in = 1/√in.
            LoraInit.Default => rand(rank, inFeatures, dtype: ScalarType.Float32, generator: generator).mul(2).sub(1).mul(1.0 / Math.Sqrt(inFeatures)),
            // PEFT: nn.init.normal_(lora_A, std=1/r).
            LoraInit.Gaussian => randn(rank, inFeatures, dtype: ScalarType.Float32, generator: generator).mul(1.0 / rank),
            _ => throw new ArgumentOutOfRangeException(nameof(init), init, "unknown init_lora_weights"),
        };
        return a.MoveToOuterDisposeScope();
    }
}

/// <summary>What <see cref="LoraInjector.LoadAdapter"/> attached: the adapter's options (to save it again after more
/// training), the base model it names, the trainable-parameter report and the portability warnings.</summary>
public sealed record LoadedAdapter(LoraOptions Options, string? BaseModelNameOrPath, LoraReport Report, IReadOnlyList<string> Warnings);
