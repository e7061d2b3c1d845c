using Qwen35.Models.Config;

namespace Qwen35.Models;

/// <summary>
/// Every parameter of a <see cref="Qwen35ForCausalLM"/> for a config — name, shape, and whether it is kept in fp32 —
/// from config arithmetic alone (the state dict of Hugging Face's <c>Qwen3_5ForCausalLM</c>; docs/model.md,
/// "Loading"), without allocating anything. The loader validates a
/// checkpoint against it before building the model; tests check it against the built module tree.
/// </summary>
public static class ParameterManifest
{
    public const string TextPrefix = "model.language_model.";

    public sealed record Entry(string Name, long[] Shape, bool KeptFp32)
    {
        public long Count => Shape.Aggregate(1L, (a, b) => a * b);
    }

    public static IReadOnlyList<Entry> For(Qwen35TextConfig c)
    {
        var list = new List<Entry>();
        void Add(string name, bool fp32 = false, params long[] shape) => list.Add(new Entry(name, shape, fp32));
        long h = c.HiddenSize, inter = c.IntermediateSize;
        Add(TextPrefix + "embed_tokens.weight", false, c.VocabSize, h);
        for (var i = 0; i < c.NumHiddenLayers; i++)
        {
            var p = $"{TextPrefix}layers.{i}.";
            if (c.IsFullAttention(i))
            {
                long hd = c.HeadDim;
                Add(p + "self_attn.q_proj.weight", false, 2 * c.NumAttentionHeads * hd, h);
                Add(p + "self_attn.k_proj.weight", false, c.NumKeyValueHeads * hd, h);
                Add(p + "self_attn.v_proj.weight", false, c.NumKeyValueHeads * hd, h);
                Add(p + "self_attn.o_proj.weight", false, h, c.NumAttentionHeads * hd);
                Add(p + "self_attn.q_norm.weight", false, hd);
                Add(p + "self_attn.k_norm.weight", false, hd);
            }
            else
            {
                Add(p + "linear_attn.in_proj_qkv.weight", false, c.LinearConvDim, h);
                Add(p + "linear_attn.in_proj_z.weight", false, c.LinearValueDim, h);
                Add(p + "linear_attn.in_proj_b.weight", false, c.LinearNumValueHeads, h);
                Add(p + "linear_attn.in_proj_a.weight", false, c.LinearNumValueHeads, h);
                Add(p + "linear_attn.conv1d.weight", false, c.LinearConvDim, 1, c.LinearConvKernelDim);
                Add(p + "linear_attn.dt_bias", true, c.LinearNumValueHeads);
                Add(p + "linear_attn.A_log", true, c.LinearNumValueHeads);
                Add(p + "linear_attn.norm.weight", true, c.LinearValueHeadDim);
                Add(p + "linear_attn.out_proj.weight", false, h, c.LinearValueDim);
            }
            Add(p + "mlp.gate_proj.weight", false, inter, h);
            Add(p + "mlp.up_proj.weight", false, inter, h);
            Add(p + "mlp.down_proj.weight", false, h, inter);
            Add(p + "input_layernorm.weight", false, h);
            Add(p + "post_attention_layernorm.weight", false, h);
        }
        Add(TextPrefix + "norm.weight", false, h);
        if (!c.TieWordEmbeddings) Add("lm_head.weight", false, c.VocabSize, h);
        return list;
    }

    public static long TotalParameters(Qwen35TextConfig c) => For(c).Sum(e => e.Count);
}
