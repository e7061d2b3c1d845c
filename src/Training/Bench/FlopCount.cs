using Qwen35.Models;
using Qwen35.Models.Modules;

namespace Qwen35.Training.Bench;

/// <summary>
/// Model FLOPs per trained token of a LoRA step (docs/training.md, "`bench`"): frozen matmuls 2N forward + 2N
/// backward (activation gradients only), LM head 2Vd + 2Vd, causal attention 3 × forward (4·(S/2)·n_h·d_h per full
/// layer). LoRA's own ≈6P and the Gated-DeltaNet core (≈0.1 GFLOP/token at 9B) are left out, as there; recompute
/// from activation checkpointing is hardware work, not model FLOPs, so it is not counted either.
/// </summary>
public sealed record FlopCount(long MatmulParams, long Vocab, long Hidden, int FullAttentionLayers, long QueryWidth, long Sequence)
{
    public double AttentionForwardPerToken => FullAttentionLayers * 4.0 * (Sequence / 2.0) * QueryWidth;
    public double PerToken => 4.0 * MatmulParams + 4.0 * Vocab * Hidden + 3 * AttentionForwardPerToken;

    public string Formula =>
        $"4N + 4Vd + 3*attn = 4*{MatmulParams:N0} + 4*{Vocab}*{Hidden} + 3*{FullAttentionLayers}*4*({Sequence}/2)*{QueryWidth} = {PerToken / 1e9:F2} GFLOP/token";

    /// <summary>The same count from the config alone (no model needed), e.g. for full-size shapes: per full-attention
    /// layer q (gated: 2·H·D wide), k, v, o; per Gated-DeltaNet layer in_proj_qkv, in_proj_z, in_proj_b, in_proj_a,
    /// out_proj; per layer the three MLP projections.</summary>
    public static FlopCount FromConfig(Models.Config.Qwen35TextConfig c, long sequence)
    {
        long h = c.HiddenSize, q = (long)c.NumAttentionHeads * c.HeadDim, kv = (long)c.NumKeyValueHeads * c.HeadDim;
        long vDim = c.LinearValueDim, kDim = c.LinearKeyDim, vHeads = c.LinearNumValueHeads;
        var full = Enumerable.Range(0, c.NumHiddenLayers).Count(c.IsFullAttention);
        var linear = c.NumHiddenLayers - full;
        var n = full * (h * 2 * q + 2 * h * kv + q * h)
                + linear * (h * (2 * kDim + vDim) + h * vDim + 2 * h * vHeads + vDim * h)
                + c.NumHiddenLayers * 3 * h * c.IntermediateSize;
        return new FlopCount(n, c.VocabSize, h, full, q, sequence);
    }

    /// <summary>N = the base projections of the decoder layers (every Projection except lm_head, adapters excluded).</summary>
    public static FlopCount For(Qwen35ForCausalLM model, long sequence)
    {
        long n = 0;
        foreach (var (name, module) in model.named_modules())
            if (module is Projection p && name.Contains(".layers.", StringComparison.Ordinal))
                n += (long)p.InFeatures * p.OutFeatures;
        var c = model.Config;
        var full = Enumerable.Range(0, c.NumHiddenLayers).Count(c.IsFullAttention);
        return new FlopCount(n, c.VocabSize, c.HiddenSize, full, (long)c.NumAttentionHeads * c.HeadDim, sequence);
    }
}
