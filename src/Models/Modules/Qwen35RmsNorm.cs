using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Qwen35.Models.Modules;

/// <summary>
/// Hugging Face <c>Qwen3_5RMSNorm</c>: zero-centred weight, y = x·rsqrt(mean(x²)+eps)·(1+w). The whole computation runs
/// in fp32 and the multiply by (1+w) happens before the cast back (unlike Llama, which casts first): see docs/model.md,
/// "Choices against the sharp edges", item 2. Used for input/post-attention norms, q_norm/k_norm (per head, last dim)
/// and the final norm.
/// </summary>
public sealed class Qwen35RmsNorm : nn.Module<Tensor, Tensor>
{
    public Parameter weight;
    readonly double eps;

    public Qwen35RmsNorm(int dim, double eps, ScalarType dtype, Device? device) : base(nameof(Qwen35RmsNorm))
    {
        this.eps = eps;
        weight = new Parameter(zeros(dim, dtype: dtype, device: device), requires_grad: false);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var xf = x.InDtype(ScalarType.Float32);
        var normed = xf * rsqrt(xf.square().mean([-1L], keepdim: true) + eps);
        // normed·(1+w) as normed + normed·w: one addcmul instead of an add on the weight and a multiply, the same
        // backward node count (the weight is frozen), rounding differently in the last bit (docs/performance.md).
        var y = normed.addcmul(normed, weight.InDtype(ScalarType.Float32), 1);
        return y.InDtype(x.dtype).MoveToOuterDisposeScope();
    }
}
