using System.Text.RegularExpressions;
using Qwen35.Models;
using Qwen35.Models.Config;
using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Export.Gguf;

/// <summary>How a Hugging Face tensor's values change on their way into llama.cpp's layout (docs/gguf.md).</summary>
public enum ValueTransform
{
    None,
    /// <summary>Zero-centred RMSNorm weight w: llama.cpp multiplies by the stored value, so 1 + w is stored.</summary>
    PlusOne,
    /// <summary>Value-head rows reordered from grouped-by-key-head to tiled (whole rows, or the V part of qkv).</summary>
    ReorderRows,
    /// <summary>out_proj: the value-head reorder applied to columns.</summary>
    ReorderColumns,
    /// <summary>A_log → −exp(A_log), then reordered.</summary>
    NegExpReorder,
    /// <summary>conv1d [C, 1, K] → [C, K], the V channels reordered.</summary>
    ConvSqueezeReorder,
}

/// <summary>One GGUF tensor of the export: where its values come from and what happens to them.</summary>
public sealed record GgufTensorPlan(string HfName, GgufTensorInfo Info, ValueTransform Transform, long ReorderStart, long HeadSize);

/// <summary>
/// The Qwen3.5 text model's tensors as llama.cpp's <c>qwen35</c> architecture names, shapes and stores them
/// (docs/gguf.md "Mapping"), and the value transforms that produce them from the model's parameters.
/// </summary>
public static class Qwen35GgufTensors
{
    const string Prefix = "model.language_model.";
    static readonly Regex LayerName = new(@"^layers\.(\d+)\.(.+)$", RegexOptions.CultureInvariant);

    /// <summary>The plan for every base parameter of <paramref name="model"/> (LoRA factors excluded; merge them first).</summary>
    /// <remarks>The tensors are in <see cref="ParameterManifest"/> order (Hugging Face's state-dict order), not in
    /// TorchSharp's <c>named_parameters</c> order (a module's own parameters before its children's), so that the
    /// export of a checkpoint read without building the model writes the same file.</remarks>
    public static IReadOnlyList<GgufTensorPlan> Plan(Qwen35ForCausalLM model, GgufType type)
    {
        var shapes = model.named_parameters()
            .Where(p => !p.name.Contains(".lora_A.", StringComparison.Ordinal) && !p.name.Contains(".lora_B.", StringComparison.Ordinal))
            .ToDictionary(p => p.name, p => p.parameter.shape, StringComparer.Ordinal);
        var manifest = ParameterManifest.For(model.Config);
        var odd = manifest.FirstOrDefault(e => !shapes.TryGetValue(e.Name, out var s) || !s.SequenceEqual(e.Shape));
        if (odd is not null || manifest.Count != shapes.Count)
            throw new InvalidOperationException($"the model's parameters differ from its config's manifest ({odd?.Name ?? "a parameter count of " + shapes.Count})");
        return Plan(model.Config, manifest.Select(e => (e.Name, e.Shape)), type);
    }

    /// <summary>The plan for the base parameters <paramref name="parameters"/> (Hugging Face names and shapes, in file
    /// order) of a model of config <paramref name="c"/>: the model's own, or a checkpoint's read without building the
    /// model (<see cref="GgufStreamedExport"/>).</summary>
    public static IReadOnlyList<GgufTensorPlan> Plan(Qwen35TextConfig c, IEnumerable<(string Name, long[] Shape)> parameters, GgufType type) =>
        parameters.Select(p => PlanOne(c, p.Name, p.Shape, type)).ToList();

    static GgufTensorPlan PlanOne(Qwen35TextConfig c, string name, long[] shape, GgufType type)
    {
        var (gguf, transform, start, head) = Map(c, name);
        var torchShape = transform == ValueTransform.ConvSqueezeReorder ? [shape[0], shape[2]] : shape;
        // 1-D tensors, every norm and the conv stay F32 (llama.cpp reads them as F32 in its graph).
        var keepF32 = torchShape.Length == 1 || gguf.EndsWith("_norm.weight", StringComparison.Ordinal) || gguf.EndsWith("ssm_conv1d.weight", StringComparison.Ordinal);
        var ne = torchShape.Reverse().ToArray();
        return new GgufTensorPlan(name, new GgufTensorInfo(gguf, ne, keepF32 ? GgmlType.F32 : type.StorageFor(ne)), transform, start, head);
    }

    /// <summary>The GGUF name of the model parameter <paramref name="name"/> and the transform of its values (the LoRA
    /// export applies the same reorders to the factors).</summary>
    public static (string Gguf, ValueTransform Transform, long Start, long Head) Map(Qwen35TextConfig c, string name)
    {
        if (name == "lm_head.weight") return ("output.weight", ValueTransform.None, 0, 0);
        if (!name.StartsWith(Prefix, StringComparison.Ordinal)) throw Unknown(name);
        var rest = name[Prefix.Length..];
        if (rest == "embed_tokens.weight") return ("token_embd.weight", ValueTransform.None, 0, 0);
        if (rest == "norm.weight") return ("output_norm.weight", ValueTransform.PlusOne, 0, 0);
        var m = LayerName.Match(rest);
        if (!m.Success) throw Unknown(name);
        var blk = $"blk.{m.Groups[1].Value}.";
        long qk = 2L * c.LinearKeyDim, dv = c.LinearValueHeadDim;
        (string, ValueTransform, long, long) R(string g, ValueTransform t = ValueTransform.None, long start = 0, long head = 0) => (blk + g, t, start, head);
        return m.Groups[2].Value switch
        {
            "input_layernorm.weight" => R("attn_norm.weight", ValueTransform.PlusOne),
            "post_attention_layernorm.weight" => R("post_attention_norm.weight", ValueTransform.PlusOne),
            "mlp.gate_proj.weight" => R("ffn_gate.weight"),
            "mlp.up_proj.weight" => R("ffn_up.weight"),
            "mlp.down_proj.weight" => R("ffn_down.weight"),
            "self_attn.q_proj.weight" => R("attn_q.weight"),
            "self_attn.k_proj.weight" => R("attn_k.weight"),
            "self_attn.v_proj.weight" => R("attn_v.weight"),
            "self_attn.o_proj.weight" => R("attn_output.weight"),
            "self_attn.q_norm.weight" => R("attn_q_norm.weight", ValueTransform.PlusOne),
            "self_attn.k_norm.weight" => R("attn_k_norm.weight", ValueTransform.PlusOne),
            "linear_attn.in_proj_qkv.weight" => R("attn_qkv.weight", ValueTransform.ReorderRows, qk, dv),
            "linear_attn.in_proj_z.weight" => R("attn_gate.weight", ValueTransform.ReorderRows, 0, dv),
            "linear_attn.in_proj_b.weight" => R("ssm_beta.weight", ValueTransform.ReorderRows, 0, 1),
            "linear_attn.in_proj_a.weight" => R("ssm_alpha.weight", ValueTransform.ReorderRows, 0, 1),
            "linear_attn.A_log" => R("ssm_a", ValueTransform.NegExpReorder, 0, 1),
            "linear_attn.dt_bias" => R("ssm_dt.bias", ValueTransform.ReorderRows, 0, 1),
            "linear_attn.conv1d.weight" => R("ssm_conv1d.weight", ValueTransform.ConvSqueezeReorder, qk, dv),
            "linear_attn.norm.weight" => R("ssm_norm.weight"),
            "linear_attn.out_proj.weight" => R("ssm_out.weight", ValueTransform.ReorderColumns, 0, dv),
            _ => throw Unknown(name),
        };
    }

    static InvalidOperationException Unknown(string name) => new($"no GGUF name for the model parameter {name}");

    /// <summary>The tensor's values in llama.cpp's layout: fp32, on the CPU, contiguous, in the caller's dispose scope.</summary>
    public static Tensor Values(GgufTensorPlan plan, Tensor parameter, Qwen35TextConfig c)
    {
        var t = parameter.detach().to(ScalarType.Float32, CPU);
        var nk = c.LinearNumKeyHeads;
        var r = c.LinearNumValueHeads / nk;
        return (plan.Transform switch
        {
            ValueTransform.None => t,
            ValueTransform.PlusOne => t + 1f,
            ValueTransform.ReorderRows => ReorderRows(t, plan.ReorderStart, nk, r, plan.HeadSize),
            ValueTransform.ReorderColumns => ReorderRows(t.t(), plan.ReorderStart, nk, r, plan.HeadSize).t(),
            ValueTransform.NegExpReorder => ReorderRows(-t.exp(), plan.ReorderStart, nk, r, plan.HeadSize),
            ValueTransform.ConvSqueezeReorder => ReorderRows(t.squeeze(1), plan.ReorderStart, nk, r, plan.HeadSize),
            _ => throw new ArgumentOutOfRangeException(nameof(plan)),
        }).contiguous();
    }

    /// <summary>True when <see cref="Values"/> acts on each element alone (no reorder, no reshape): such a tensor can be
    /// transformed and written a block of rows at a time, with the same bytes as whole.</summary>
    public static bool IsElementwise(ValueTransform t) => t is ValueTransform.None or ValueTransform.PlusOne;

    /// <summary>Transforms <paramref name="parameter"/> (the whole tensor, or with an elementwise transform a block of its
    /// rows) and writes it encoded as the plan's storage type; checks the values' shape against the plan.</summary>
    public static void Write(Stream stream, GgufTensorPlan plan, Tensor parameter, Qwen35TextConfig c)
    {
        using var scope = NewDisposeScope();
        var values = Values(plan, parameter, c);
        var ne = values.shape.Reverse().ToArray();
        var whole = ne.SequenceEqual(plan.Info.Ne);
        var rowBlock = IsElementwise(plan.Transform) && ne.Length == plan.Info.Ne.Length && ne.Length > 1
                       && ne[..^1].SequenceEqual(plan.Info.Ne[..^1]) && ne[^1] <= plan.Info.Ne[^1];
        if (!whole && !rowBlock)
            throw new InvalidOperationException($"{plan.Info.Name}: values of shape {Shapes.Format(values.shape)} do not match the planned ne [{string.Join(", ", plan.Info.Ne)}]");
        GgufEncoding.Write(stream, values, plan.Info.Type);
    }

    /// <summary>
    /// Rows from <paramref name="start"/> on are value heads of <paramref name="head"/> rows each, stored grouped by key
    /// head ([K0: v0..v(r−1), K1: …]); llama.cpp wants them tiled ([K0v0, K1v0, …, K0v1, …]): new head j·nk + k is old
    /// head k·r + j. Reshaped to [nk, r, head, …] and the first two axes swapped.
    /// </summary>
    public static Tensor ReorderRows(Tensor t, long start, int nk, int r, long head)
    {
        if (r == 1) return t;
        var rest = t.shape[1..];
        var v = t.narrow(0, start, t.shape[0] - start);
        var tiled = v.reshape([nk, r, head, .. rest]).transpose(0, 1).reshape(v.shape);
        return start == 0 ? tiled : cat([t.narrow(0, 0, start), tiled], 0);
    }
}
