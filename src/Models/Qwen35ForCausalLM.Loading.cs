using Qwen35.Models.Config;
using Qwen35.Models.Modules;
using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Models;

public sealed partial class Qwen35ForCausalLM
{
    /// <summary>Key prefixes a text-only model skips (and counts): same list as <see cref="CheckpointPlan.SkippedPrefixes"/>.</summary>
    public static IReadOnlyList<string> SkippedPrefixes => CheckpointPlan.SkippedPrefixes;

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
        using var plan = CheckpointPlan.Open(dir);
        if (plan.Problem is { } problem) throw new UserInputException(problem);

        var model = new Qwen35ForCausalLM(plan.Config, dtype, device);
        var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter, StringComparer.Ordinal);
        var dtypes = new SortedDictionary<string, int>(StringComparer.Ordinal);
        using (no_grad())
        {
            foreach (var (param, source) in plan.Mapping.OrderBy(kv => kv.Value, StringComparer.Ordinal))
            {
                using var scope = NewDisposeScope();
                var info = plan.Checkpoint.Info(source);
                dtypes[info.Dtype] = dtypes.GetValueOrDefault(info.Dtype) + 1;
                // copy_ converts dtype and device on the fly, reading the mmap'd view once. In-place ops return the
                // parameter itself, which the scope would otherwise dispose.
                parameters[param].copy_(plan.Checkpoint.Load(source)).DetachFromDisposeScope();
            }
        }
        var report = new LoadReport(plan.Checkpoint.Source, plan.Layout, plan.Mapping.Count, plan.Skipped, model.IsTied, dtypes);
        return (model, report);
    }

    /// <summary>
    /// A randomly initialised model with Hugging Face's init (<c>Qwen3_5PreTrainedModel._init_weights</c>):
    /// projections, embeddings and the conv weight ~ N(0, initializer_range); zero-centred RMSNorm weights 0;
    /// gated-norm weight 1; dt_bias 1; A_log = log(U(0.01, 16)). Values are drawn on the CPU from one generator seeded
    /// with <paramref name="seed"/> in module order, so the same seed gives the same weights on any device and dtype.
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
