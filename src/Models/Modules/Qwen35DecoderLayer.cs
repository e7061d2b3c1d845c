using Qwen35.Models.Config;
using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Models.Modules;

/// <summary>
/// One pre-norm decoder layer (HF <c>Qwen3_5DecoderLayer</c>): x += mixer(input_layernorm(x)); x +=
/// mlp(post_attention_layernorm(x)). The mixer is <c>linear_attn</c> (Gated DeltaNet) or <c>self_attn</c> (gated
/// attention) by layer type; the other field stays null and is not registered, so the parameter names match the
/// checkpoint.
/// </summary>
public sealed class Qwen35DecoderLayer : nn.Module<Tensor, LayerContext, Tensor>
{
    public GatedDeltaNet? linear_attn;
    public Qwen35Attention? self_attn;
    public Qwen35Mlp mlp;
    public Qwen35RmsNorm input_layernorm;
    public Qwen35RmsNorm post_attention_layernorm;

    public Qwen35DecoderLayer(Qwen35TextConfig c, int layerIndex, ScalarType dtype, Device? device) : base(nameof(Qwen35DecoderLayer))
    {
        LayerType = c.LayerTypes[layerIndex];
        if (c.IsFullAttention(layerIndex)) self_attn = new Qwen35Attention(c, layerIndex, dtype, device);
        else linear_attn = new GatedDeltaNet(c, layerIndex, dtype, device);
        mlp = new Qwen35Mlp(c.HiddenSize, c.IntermediateSize, dtype, device);
        input_layernorm = new Qwen35RmsNorm(c.HiddenSize, c.RmsNormEps, dtype, device);
        post_attention_layernorm = new Qwen35RmsNorm(c.HiddenSize, c.RmsNormEps, dtype, device);
        RegisterComponents();
    }

    /// <summary>"linear_attention" or "full_attention".</summary>
    public string LayerType { get; }

    public override Tensor forward(Tensor x, LayerContext ctx)
    {
        using var scope = NewDisposeScope();
        var normed = input_layernorm.forward(x);
        var mixed = self_attn is not null ? self_attn.forward(normed, ctx) : linear_attn!.forward(normed, ctx);
        var h = x + mixed;
        var y = h + mlp.forward(post_attention_layernorm.forward(h));
        return y.MoveToOuterDisposeScope();
    }
}
