using Qwen35.Export.Gguf;
using Qwen35.Models;
using Qwen35.Tests;
using static TorchSharp.torch;

namespace Qwen35.Export.Tests;

/// <summary>The trainer's own fp32 forward, with the weight matrices optionally rounded to F16 or BF16 by torch (round
/// to nearest even) exactly where the export stores them in that type: what storage rounding alone does to the logits,
/// independent of llama.cpp.</summary>
static class TrainerForward
{
    /// <summary>The golden model's logits [T][V].</summary>
    public static float[][] Logits(long[] ids, GgufType rounding) =>
        Logits(() => Qwen35ForCausalLM.FromPretrained(TestPaths.GoldenTiny, ScalarType.Float32, CPU).Model, ids, rounding);

    public static float[][] Logits(Func<Qwen35ForCausalLM> load, long[] ids, GgufType rounding = GgufType.F32)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        using var model = load();
        model.eval();
        if (rounding != GgufType.F32)
        {
            var low = rounding == GgufType.F16 ? ScalarType.Float16 : ScalarType.BFloat16;
            var rounded = Qwen35GgufTensors.Plan(model, rounding).Where(p => p.Info.Type != GgmlType.F32).Select(p => p.HfName).ToHashSet();
            foreach (var (name, p) in model.named_parameters())
                if (rounded.Contains(name)) p.copy_(p.to(low).to(ScalarType.Float32));
        }
        var logits = model.Logits(model.Forward(new ModelInputs(tensor(ids, dtype: ScalarType.Int64).unsqueeze(0)))).squeeze(0).contiguous();
        var flat = logits.data<float>().ToArray();
        var v = (int)logits.shape[1];
        return Enumerable.Range(0, (int)logits.shape[0]).Select(i => flat.AsSpan(i * v, v).ToArray()).ToArray();
    }
}
