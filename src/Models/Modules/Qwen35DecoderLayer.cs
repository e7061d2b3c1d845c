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
        long b = x.shape[0], t = x.shape[1];
        // The layer works on 2-d rows [B·T, h], the shape its projections multiply: one reshape here and one view back
        // instead of a reshape and a view in the mixer and again in the MLP (each also a node in backward;
        // docs/performance.md, "The decoder layer on 2-d token rows"). Norms and sums are the same on either shape.
        var rows = x.reshape(b * t, x.shape[2]);
        var normed = input_layernorm.forward(rows);
        var mixed = self_attn is not null ? self_attn.ForwardRows(normed, b, t, ctx) : linear_attn!.ForwardRows(normed, b, t, ctx);
        var h = rows + mixed;
        var y = h + mlp.forward(post_attention_layernorm.forward(h));
        return y.view(b, t, -1).MoveToOuterDisposeScope();
    }
}
