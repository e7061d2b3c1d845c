using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Qwen35.Models.Modules;

/// <summary>
/// Holder of the GDN's depthwise causal conv weight [C, 1, K] (no bias), so the parameter's key is exactly
/// <c>linear_attn.conv1d.weight</c> as in HF's <c>nn.Conv1d</c>. The convolution itself (with state and per-document
/// resets) is done by <see cref="GatedDeltaNet"/>.
/// </summary>
public sealed class DepthwiseConv1d : nn.Module
{
    public Parameter weight;

    public DepthwiseConv1d(int channels, int kernel, ScalarType dtype, Device? device) : base(nameof(DepthwiseConv1d))
    {
        weight = new Parameter(empty(channels, 1, kernel, dtype: dtype, device: device), requires_grad: false);
        RegisterComponents();
    }

    public int Channels => (int)weight.shape[0];
}
