using Qwen35.Models.Config;
using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Models.Modules;

/// <summary>
/// Gated full attention (HF <c>Qwen3_5Attention</c>): q_proj emits per head [query_h | gate_h] (docs/model.md, "Choices
/// against the sharp edges", item 3), q_norm/k_norm per head before partial RoPE, GQA by repeat_interleave, SDPA (scale
/// D^-0.5), then out ⊙ sigmoid(gate) before o_proj.
/// </summary>
public sealed class Qwen35Attention : nn.Module<Tensor, LayerContext, Tensor>
{
    public Projection q_proj;
    public Projection k_proj;
    public Projection v_proj;
    public Projection o_proj;
    public Qwen35RmsNorm q_norm;
    public Qwen35RmsNorm k_norm;

    readonly int layerIndex, heads, kvHeads, headDim;

    /// <summary>
    /// Packed rows with at most this many documents run attention per document (see <see cref="PackedDocuments"/>);
    /// more documents fall back to the block-diagonal mask, bounding the per-layer kernel count.
    /// </summary>
    public const int MaxDocumentsPerRowForSplit = 64;

    public Qwen35Attention(Qwen35TextConfig c, int layerIndex, ScalarType dtype, Device? device) : base(nameof(Qwen35Attention))
    {
        this.layerIndex = layerIndex;
        heads = c.NumAttentionHeads;
        kvHeads = c.NumKeyValueHeads;
        headDim = c.HeadDim;
        q_proj = new Projection(c.HiddenSize, heads * headDim * 2, dtype, device);
        k_proj = new Projection(c.HiddenSize, kvHeads * headDim, dtype, device);
        v_proj = new Projection(c.HiddenSize, kvHeads * headDim, dtype, device);
        o_proj = new Projection(heads * headDim, c.HiddenSize, dtype, device);
        q_norm = new Qwen35RmsNorm(headDim, c.RmsNormEps, dtype, device);
        k_norm = new Qwen35RmsNorm(headDim, c.RmsNormEps, dtype, device);
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
        // View as [B, T, H, 2D] and split each head's row block into query (first D) and gate (last D).
        // chunk (HF's torch.chunk) rather than two narrows: one concatenation in backward instead of two zero tensors
        // of the full projection.
        // q/k/v share the rows, and their adapters one input-side product.
        var qkv = Projection.ForwardShared(x, q_proj, k_proj, v_proj);
        var qg = qkv[0].view(b, t, heads, 2 * headDim).chunk(2, -1);
        var q = qg[0];
        var gate = qg[1].reshape(b * t, heads * headDim);

        q = q_norm.forward(q).transpose(1, 2);                                            // [B, H, T, D]
        var k = k_norm.forward(qkv[1].view(b, t, kvHeads, headDim)).transpose(1, 2);
        var v = qkv[2].view(b, t, kvHeads, headDim).transpose(1, 2);
        q = Rotary.Apply(q, ctx.Cos, ctx.Sin);
        k = Rotary.Apply(k, ctx.Cos, ctx.Sin);

        if (ctx.Cache is { } cache) (k, v) = cache.AppendKeyValues(layerIndex, k, v);

        // TorchSharp's SDPA has no GQA flag: repeat each KV head for its H/Hkv consecutive query heads.
        var groups = heads / kvHeads;
        var kr = groups == 1 ? k : k.repeat_interleave(groups, dim: 1);
        var vr = groups == 1 ? v : v.repeat_interleave(groups, dim: 1);
        var attn = ctx.DocumentSpans is { } spans ? PerDocument(q, kr, vr, spans)
            : ctx.AttentionMask is { } mask ? nn.functional.scaled_dot_product_attention(q, kr, vr, mask)
            : nn.functional.scaled_dot_product_attention(q, kr, vr, is_casual: ctx.IsCausal);

        var o = attn.transpose(1, 2).reshape(b * t, heads * headDim) * sigmoid(gate);
        return o_proj.forward(o).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Block-diagonal causal attention without a mask: each document's queries attend causally to its own keys
    /// (SDPA with the causal flag, which CUDA can serve with the flash kernel: no [T, T] tensor), and the outputs are
    /// concatenated back in token order. Equal to the masked form for every real token; trailing padding forms part
    /// of the last document and, coming last, is never seen by a real token.
    /// </summary>
    static Tensor PerDocument(Tensor q, Tensor k, Tensor v, IReadOnlyList<(int Start, int Length)[]> spans)
    {
        // split (not narrow): its backward is ONE concatenation of the pieces' gradients, whereas every narrow's
        // backward allocates a zero tensor of the full [B,H,T,D] input and copies its piece in (K documents would
        // cost K full-size tensors per layer).
        Tensor[] Rows(Tensor x) => spans.Count == 1 ? [x] : x.split(1, 0);
        var (qs, ks, vs) = (Rows(q), Rows(k), Rows(v));
        var rows = new List<Tensor>(spans.Count);
        for (var r = 0; r < spans.Count; r++)
        {
            var lengths = spans[r].Select(s => (long)s.Length).ToArray();
            Tensor[] qd = qs[r].split(lengths, 2), kd = ks[r].split(lengths, 2), vd = vs[r].split(lengths, 2);
            var parts = new Tensor[lengths.Length];
            for (var d = 0; d < parts.Length; d++)
                parts[d] = nn.functional.scaled_dot_product_attention(qd[d], kd[d], vd[d], is_casual: true);
            rows.Add(parts.Length == 1 ? parts[0] : cat(parts, 2));
        }
        return rows.Count == 1 ? rows[0] : cat(rows, 0);
    }
}
