using Qwen35.Export.Gguf;
using Qwen35.Models;
using Qwen35.Tests;
using static TorchSharp.torch;

namespace Qwen35.Export.Tests;

/// <summary>The trainer's own fp32 forward, with the weight matrices optionally replaced by what the export stores in a
/// lower type: F16/BF16 rounded by torch (round to nearest even), Q8_0 as dequantized from the file by the tests' own
/// reader. What storage rounding alone does to the logits, independent of llama.cpp.</summary>
static class TrainerForward
{
    /// <summary>The golden model's logits [T][V], its matrices rounded as <paramref name="rounding"/> stores them.</summary>
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
            var plans = Qwen35GgufTensors.Plan(model, rounding).Where(p => p.Info.Type != GgmlType.F32).ToDictionary(p => p.HfName);
            var q8 = rounding == GgufType.Q8_0 ? GgufReader.Open(GgufFiles.GoldenTiny("q8_0")) : null;
            foreach (var (name, p) in model.named_parameters())
            {
                if (!plans.TryGetValue(name, out var plan)) continue;
                if (q8 is null) p.copy_(p.to(rounding == GgufType.F16 ? ScalarType.Float16 : ScalarType.BFloat16).to(ScalarType.Float32));
                else p.copy_(tensor(ToHfOrder(q8.DequantizeQ8(plan.Info.Name), plan)).reshape(p.shape));
            }
        }
        var logits = model.Logits(model.Forward(new ModelInputs(tensor(ids, dtype: ScalarType.Int64).unsqueeze(0)))).squeeze(0).contiguous();
        var flat = logits.data<float>().ToArray();
        var v = (int)logits.shape[1];
        return Enumerable.Range(0, (int)logits.shape[0]).Select(i => flat.AsSpan(i * v, v).ToArray()).ToArray();
    }

    /// <summary>GGUF-ordered [ne1][ne0] values back in the Hugging Face order, by the reorder's index formula (GGUF head
    /// n holds HF head (n mod nk)·r + n / nk; golden: nk 2, r 2).</summary>
    internal static float[] ToHfOrder(float[] gguf, GgufTensorPlan plan)
    {
        const int nk = 2, r = 2;
        static long Old(long n) => n % nk * r + n / nk;
        var (cols, rows) = (plan.Info.Ne[0], plan.Info.Ne[1]);
        var hf = new float[gguf.Length];
        for (long row = 0; row < rows; row++)
            for (long col = 0; col < cols; col++)
            {
                var (hr, hc) = (row, col);
                if (plan.Transform == ValueTransform.ReorderRows && row >= plan.ReorderStart)
                {
                    var i = row - plan.ReorderStart;
                    hr = plan.ReorderStart + Old(i / plan.HeadSize) * plan.HeadSize + i % plan.HeadSize;
                }
                else if (plan.Transform == ValueTransform.ReorderColumns)
                    hc = Old(col / plan.HeadSize) * plan.HeadSize + col % plan.HeadSize;
                else if (plan.Transform != ValueTransform.None && plan.Transform != ValueTransform.ReorderRows)
                    throw new InvalidOperationException($"{plan.HfName}: {plan.Transform} on a quantized matrix");
                hf[hr * cols + hc] = gguf[row * cols + col];
            }
        return hf;
    }
}
