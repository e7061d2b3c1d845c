using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Qwen35.Models.Modules;

/// <summary>
/// Hugging Face <c>Qwen3_5RMSNormGated</c> (<c>linear_attn.norm</c>): plain weight w (initialised to ones, NOT 1+w),
/// normalise first, then gate with silu(z). Applied per value head over dv with one shared weight (docs/model.md,
/// "Choices against the sharp edges", items 2 and 12). The weight is kept in fp32 even in a bf16 model (Qwen3.5
/// checkpoints store it as F32).
/// </summary>
public sealed class RmsNormGated : nn.Module<Tensor, Tensor, Tensor>
{
    public Parameter weight;
    readonly double eps;

    public RmsNormGated(int dim, double eps, Device? device) : base(nameof(RmsNormGated))
    {
        this.eps = eps;
        weight = new Parameter(ones(dim, dtype: ScalarType.Float32, device: device), requires_grad: false);
        RegisterComponents();
    }

    /// <param name="x">core output [..., dv] in the model dtype.</param>
    /// <param name="z">gate [..., dv] from in_proj_z.</param>
    public override Tensor forward(Tensor x, Tensor z)
    {
        using var scope = NewDisposeScope();
        var dtype = x.dtype;
        var xf = x.InDtype(ScalarType.Float32);
        var normed = (xf * rsqrt(xf.square().mean([-1L], keepdim: true) + eps)).InDtype(dtype);
        // HF: weight * normed.to(input_dtype), which promotes to fp32 with an fp32 weight; then the fp32 gate.
        var y = weight * normed * nn.functional.silu(z.InDtype(ScalarType.Float32));
        return y.InDtype(dtype).MoveToOuterDisposeScope();
    }
}
