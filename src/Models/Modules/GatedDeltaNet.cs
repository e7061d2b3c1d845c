using Qwen35.Models.Config;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Qwen35.Models.Modules;

/// <summary>
/// Gated DeltaNet linear attention (HF <c>Qwen3_5GatedDeltaNet</c>, docs/deltanet.md): in_proj_qkv → depthwise causal
/// conv over [q|k|v] jointly → SiLU → split; β = sigmoid(b); g = −exp(A_log)·softplus(a + dt_bias) in fp32; gated delta
/// rule (fp32, l2-norm and 1/√dk inside the kernel); per-head gated RMSNorm with silu(z); out_proj.
/// A_log, dt_bias and norm.weight are fp32 parameters whatever the model dtype (docs/model.md, "Choices against the
/// sharp edges", item 15).
/// </summary>
public sealed class GatedDeltaNet : nn.Module<Tensor, LayerContext, Tensor>
{
    public Projection in_proj_qkv;
    public Projection in_proj_z;
    public Projection in_proj_b;
    public Projection in_proj_a;
    public DepthwiseConv1d conv1d;
    public Parameter dt_bias;
    public Parameter A_log;
    public RmsNormGated norm;
    public Projection out_proj;

    readonly int layerIndex, kHeads, vHeads, dk, dv;

    /// <summary>Chunk length of the chunked delta rule (HF uses 64).</summary>
    public const int ChunkSize = 64;

    public GatedDeltaNet(Qwen35TextConfig c, int layerIndex, ScalarType dtype, Device? device) : base(nameof(GatedDeltaNet))
    {
        this.layerIndex = layerIndex;
        kHeads = c.LinearNumKeyHeads;
        vHeads = c.LinearNumValueHeads;
        dk = c.LinearKeyHeadDim;
        dv = c.LinearValueHeadDim;
        in_proj_qkv = new Projection(c.HiddenSize, c.LinearConvDim, dtype, device);
        in_proj_z = new Projection(c.HiddenSize, c.LinearValueDim, dtype, device);
        in_proj_b = new Projection(c.HiddenSize, vHeads, dtype, device);
        in_proj_a = new Projection(c.HiddenSize, vHeads, dtype, device);
        conv1d = new DepthwiseConv1d(c.LinearConvDim, c.LinearConvKernelDim, dtype, device);
        dt_bias = new Parameter(ones(vHeads, dtype: ScalarType.Float32, device: device), requires_grad: false);
        A_log = new Parameter(zeros(vHeads, dtype: ScalarType.Float32, device: device), requires_grad: false);
        norm = new RmsNormGated(dv, c.RmsNormEps, device);
        out_proj = new Projection(c.LinearValueDim, c.HiddenSize, dtype, device);
        RegisterComponents();
    }

    /// <summary>On x [B, T, hidden]; returns [B, T, hidden]. See <see cref="ForwardRows"/>.</summary>
    public override Tensor forward(Tensor x, LayerContext ctx)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1];
        return ForwardRows(x.reshape(b * t, x.shape[2]), b, t, ctx).view(b, t, -1).MoveToOuterDisposeScope();
    }

    /// <summary>The layer on the B·T token rows [B·T, hidden] of a [B, T] batch (the decoder layer's shape); returns
    /// [B·T, hidden].</summary>
    public Tensor ForwardRows(Tensor x, long b, long t, LayerContext ctx)
    {
        using var scope = NewDisposeScope();
        // Pad tokens become zero vectors before the projections (HF apply_mask_to_padding_states): left padding is
        // then exact, right padding exact for the real tokens.
        if (ctx.LinearInputMask is { } m) x = x * m.reshape(b * t, 1);
        // The four input projections share the rows, and their adapters one input-side product.
        var inputs = Projection.ForwardShared(x, in_proj_qkv, in_proj_z, in_proj_b, in_proj_a);

        var cache = ctx.Cache;
        var hasState = cache?.HasLinearState(layerIndex) == true;
        var mixed = inputs[0].view(b, t, -1).transpose(1, 2);             // [B, C, T] raw
        Tensor convOut;
        Tensor? newConvState = null;
        if (ctx.ConvLayout is { } convLayout) convOut = CausalConv.ForwardPacked(mixed, conv1d.weight, convLayout);
        else if (cache is null) convOut = CausalConv.ForwardFresh(mixed, conv1d.weight);
        else (convOut, newConvState) = CausalConv.Forward(mixed, conv1d.weight, hasState ? cache.ConvState(layerIndex) : null);
        var activated = nn.functional.silu(convOut);                                      // [B, C, T]

        var beta = sigmoid(inputs[2]).view(b, t, vHeads);
        // fp32: in half precision exp(A_log) can overflow (HF comment; docs/model.md, "Choices against the sharp
        // edges", item 10).
        var g = -A_log.exp() * nn.functional.softplus(inputs[3].view(b, t, vHeads).InDtype(ScalarType.Float32) + dt_bias);

        // Grouped value heads: v head j reads k/q head j / (Hv/Hk) (HF's repeat_interleave; docs/model.md, "Choices
        // against the sharp edges", item 9). The kernel takes the Hk key heads and broadcasts them, so no repeated
        // copy of q/k is made (or differentiated).
        var initial = hasState ? cache!.RecurrentState(layerIndex) : null;
        Tensor core, finalState;
        if (cache is null && ctx.DeltaRuleLayout is null && dk == dv)
        {
            // Training's path: the channels [q heads | k heads | v heads] × d of the conv output, turned heads-first
            // with ONE copy ([B, 2Hk+H, T, d]) and split into queries+keys and values (split's backward is one
            // concatenation); the kernel needs them heads-first, which three [B,T,H,d] views would cost three copies.
            var heads = activated.view(b, 2 * kHeads + vHeads, dk, t).transpose(2, 3).contiguous().split([2 * kHeads, vHeads], 1);
            (core, finalState) = GatedDeltaRule.ChunkedHeadsFirst(heads[0], heads[1], g, beta, null, ChunkSize);
        }
        else
        {
            // split (as HF's torch.split), not three narrows: split's backward is one concatenation, each narrow's a
            // zero tensor of the whole [B,T,C] activation with its piece copied in.
            var keyDim = kHeads * dk;
            var pieces = activated.transpose(1, 2).split([keyDim, keyDim, vHeads * dv], -1);   // [B, T, *]
            var q = pieces[0].reshape(b, t, kHeads, dk);
            var k = pieces[1].reshape(b, t, kHeads, dk);
            var v = pieces[2].reshape(b, t, vHeads, dv);
            (core, finalState) = hasState && t == 1
                ? GatedDeltaRule.Recurrent(q, k, v, g, beta, initial)
                : GatedDeltaRule.Chunked(q, k, v, g, beta, initial, ChunkSize, ctx.DeltaRuleLayout);
        }
        // Packed rows (the only inputs without a conv state to hand on) never come with a cache.
        if (cache is not null)
            cache.SetLinearStates(layerIndex, newConvState ?? throw new InvalidOperationException("packed rows cannot fill a cache"), finalState);

        var z = inputs[1].view(b, t, vHeads, dv);
        var normed = norm.forward(core, z).reshape(b * t, vHeads * dv);
        return out_proj.forward(normed).MoveToOuterDisposeScope();
    }
}
