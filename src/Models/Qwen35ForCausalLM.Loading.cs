using Qwen35.Models.Config;
using Qwen35.Models.Modules;
using Qwen35.Models.SafeTensors;
using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Models;

public sealed partial class Qwen35ForCausalLM
{
    /// <summary>Key prefixes present in published checkpoints that a text-only model skips (and counts).</summary>
    public static readonly IReadOnlyList<string> SkippedPrefixes = ["model.visual.", "mtp."];

    /// <summary>
    /// Loads a Hugging Face Qwen3.5 folder (config.json + model.safetensors or a sharded index). The model is built
    /// directly in <paramref name="dtype"/> on <paramref name="device"/> and each checkpoint tensor is copied from its
    /// memory-mapped view into the parameter of the same name (no fp32 host copy of a bf16 checkpoint).
    /// Keys: <c>model.language_model.*</c> and <c>lm_head.weight</c> as is; a flat text-only export's
    /// <c>model.{layers,embed_tokens,norm}.*</c> map to <c>model.language_model.*</c>; <c>model.visual.*</c> and
    /// <c>mtp.*</c> are skipped and counted. Missing, unexpected or mis-shaped keys are an
    /// <see cref="InvalidDataException"/> naming them (sorted) and the checkpoint, raised before any allocation.
    /// </summary>
    public static (Qwen35ForCausalLM Model, LoadReport Report) FromPretrained(string dir, ScalarType dtype, Device device)
    {
        var configPath = Path.Combine(dir, "config.json");
        var config = Qwen35TextConfig.Load(configPath);
        using var checkpoint = SafeTensorsCheckpoint.Open(dir);

        // Map checkpoint names to parameter names.
        var skipped = new SortedDictionary<string, int>(StringComparer.Ordinal);
        var mapping = new Dictionary<string, string>(StringComparer.Ordinal);    // parameter name -> checkpoint name
        var unexpected = new List<string>();
        bool sawWrapper = false, sawFlat = false;
        foreach (var name in checkpoint.Names)
        {
            var skip = SkippedPrefixes.FirstOrDefault(p => name.StartsWith(p, StringComparison.Ordinal));
            if (skip is not null)
            {
                skipped[skip] = skipped.GetValueOrDefault(skip) + 1;
                continue;
            }
            string target;
            if (name.StartsWith(ParameterManifest.TextPrefix, StringComparison.Ordinal) || name == "lm_head.weight")
            {
                target = name;
                sawWrapper |= name != "lm_head.weight";
            }
            else if (name.StartsWith("model.", StringComparison.Ordinal))
            {
                target = ParameterManifest.TextPrefix + name["model.".Length..];
                sawFlat = true;
            }
            else
            {
                unexpected.Add(name);
                continue;
            }
            if (!mapping.TryAdd(target, name))
                throw new InvalidDataException(
                    $"{checkpoint.Source}: both '{mapping[target]}' and '{name}' map to parameter '{target}' (mixed wrapper and flat layouts)");
        }

        // A tied config with an lm_head tensor present: like HF (which warns and does not tie when both exist) we
        // keep the stored head rather than drop weights.
        if (config.TieWordEmbeddings && mapping.ContainsKey("lm_head.weight"))
            config = config with { TieWordEmbeddings = false };

        var manifest = ParameterManifest.For(config);
        var expected = manifest.ToDictionary(e => e.Name, StringComparer.Ordinal);
        unexpected.AddRange(mapping.Where(kv => !expected.ContainsKey(kv.Key)).Select(kv => kv.Value));
        var missing = expected.Keys.Where(k => !mapping.ContainsKey(k)).ToList();
        var misShaped = mapping.Where(kv => expected.ContainsKey(kv.Key))
            .Select(kv => (kv.Value, Want: expected[kv.Key].Shape, Got: checkpoint.Info(kv.Value).Shape))
            .Where(x => !x.Want.SequenceEqual(x.Got))
            .Select(x => $"{x.Value} has shape [{string.Join(", ", x.Got)}], expected [{string.Join(", ", x.Want)}]")
            .ToList();
        if (unexpected.Count + missing.Count + misShaped.Count > 0)
            throw new InvalidDataException(DescribeMismatch(checkpoint.Source, configPath, missing, unexpected, misShaped));

        var model = new Qwen35ForCausalLM(config, dtype, device);
        var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter, StringComparer.Ordinal);
        var dtypes = new SortedDictionary<string, int>(StringComparer.Ordinal);
        using (no_grad())
        {
            foreach (var (param, source) in mapping.OrderBy(kv => kv.Value, StringComparer.Ordinal))
            {
                using var scope = NewDisposeScope();
                var info = checkpoint.Info(source);
                dtypes[info.Dtype] = dtypes.GetValueOrDefault(info.Dtype) + 1;
                // copy_ converts dtype and device on the fly, reading the mmap'd view once. In-place ops return the
                // parameter itself, which the scope would otherwise dispose.
                parameters[param].copy_(checkpoint.Load(source)).DetachFromDisposeScope();
            }
        }
        var layout = sawFlat && !sawWrapper ? "flat" : "wrapper";
        var report = new LoadReport(checkpoint.Source, layout, mapping.Count, skipped, model.IsTied, dtypes);
        return (model, report);
    }

    static string DescribeMismatch(string source, string configPath, List<string> missing, List<string> unexpected, List<string> misShaped)
    {
        static string List(string what, List<string> items)
        {
            items.Sort(StringComparer.Ordinal);
            const int shown = 20;
            var more = items.Count > shown ? $" … and {items.Count - shown} more" : "";
            return $"{items.Count} {what}: {string.Join("; ", items.Take(shown))}{more}";
        }
        var parts = new List<string>();
        if (missing.Count > 0) parts.Add(List("missing key(s)", missing));
        if (unexpected.Count > 0) parts.Add(List("unexpected key(s)", unexpected));
        if (misShaped.Count > 0) parts.Add(List("shape mismatch(es)", misShaped));
        return $"{source} does not match the model described by {configPath}: {string.Join(". ", parts)}";
    }

    /// <summary>
    /// A randomly initialised model with Hugging Face's init (doc §7): projections, embeddings and the conv weight
    /// ~ N(0, initializer_range); zero-centred RMSNorm weights 0; gated-norm weight 1; dt_bias 1;
    /// A_log = log(U(0.01, 16)). Values are drawn on the CPU from one generator seeded with <paramref name="seed"/>
    /// in module order, so the same seed gives the same weights on any device and dtype.
    /// </summary>
    public static Qwen35ForCausalLM CreateRandom(Qwen35TextConfig config, long seed, ScalarType dtype = ScalarType.Float32,
        Device? device = null)
    {
        var model = new Qwen35ForCausalLM(config, dtype, device);
        var generator = new Generator((ulong)seed, CPU);
        var std = config.InitializerRange;
        using var noGrad = no_grad();
        void Fill(Tensor param, Func<long[], Tensor> make)
        {
            using var scope = NewDisposeScope();
            param.copy_(make(param.shape)).DetachFromDisposeScope();
        }
        foreach (var module in model.modules())
        {
            switch (module)
            {
                case Projection p: Fill(p.weight, s => normal(0, std, s, generator: generator)); break;
                case TokenEmbedding e: Fill(e.weight, s => normal(0, std, s, generator: generator)); break;
                case DepthwiseConv1d c: Fill(c.weight, s => normal(0, std, s, generator: generator)); break;
                // In-place results are the parameters themselves: keep them out of any caller's dispose scope.
                case Qwen35RmsNorm n: n.weight.zero_().DetachFromDisposeScope(); break;
                case RmsNormGated g: g.weight.fill_(1.0).DetachFromDisposeScope(); break;
                case GatedDeltaNet d:
                    d.dt_bias.fill_(1.0).DetachFromDisposeScope();
                    Fill(d.A_log, s => (rand(s, generator: generator) * (16 - 0.01) + 0.01).log());
                    break;
            }
        }
        generator.Dispose();
        return model;
    }
}
