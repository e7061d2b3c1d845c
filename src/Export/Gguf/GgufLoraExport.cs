using Qwen35.Lora;
using Qwen35.Models;
using Qwen35.Models.Config;
using static TorchSharp.torch;

namespace Qwen35.Export.Gguf;

/// <summary>What <see cref="GgufLoraExport.Export"/> wrote.</summary>
public sealed record GgufLoraExportResult(string Path, int Modules, long Bytes, double Alpha);

/// <summary>
/// Writes a PEFT LoRA adapter as a llama.cpp LoRA GGUF (docs/gguf.md "LoRA adapter GGUF"): for each adapted weight
/// <c>&lt;gguf name&gt;.lora_a</c> (PEFT lora_A [r, in], ne {in, r}) and <c>.lora_b</c> (lora_B [out, r], ne {r, out}),
/// with the value-head reorder of the base tensor applied to the factor that carries the reordered axis: B's rows
/// for in_proj_qkv (its V rows), in_proj_z, in_proj_a and in_proj_b; A's columns for out_proj. llama.cpp scales
/// every module by alpha / r (r from the tensor's shape) with one file-wide alpha, so each module's own scaling
/// (rank_pattern, alpha_pattern, rsLoRA) is folded into B: B' = B · scaling · r / alpha.
/// </summary>
public static class GgufLoraExport
{
    /// <summary>The adapter metadata llama.cpp's <c>llama_adapter_lora_init</c> reads.</summary>
    public static GgufMetadata Metadata(string name, double alpha, GgufType type) => new GgufMetadata()
        .String("general.architecture", "qwen35")
        .String("general.type", "adapter")
        .String("general.name", name)
        .U32("general.file_type", type.FileType())
        .String("adapter.type", "lora")
        .F32("adapter.lora.alpha", (float)alpha);

    /// <summary>The factor that B is multiplied by so that llama.cpp's alpha / r gives the module's trained scaling.</summary>
    public static double FoldFactor(LoraOptions o, string module, int rank) =>
        o.ScalingFor(module) * rank / o.Alpha;

    /// <summary>Writes <paramref name="adapter"/> to <paramref name="outPath"/> (atomic: nothing is left on failure).</summary>
    public static GgufLoraExportResult Export(PeftAdapterFile adapter, Qwen35TextConfig c, string outPath, GgufType type, string name)
    {
        if (type is not (GgufType.F32 or GgufType.F16))
            throw new UserInputException($"--type {OptionNames.Name(type)}: a LoRA GGUF is written as f32 or f16 only");
        var o = adapter.Options;
        var config = Path.Combine(adapter.Directory, PeftAdapterConfig.FileName);
        // llama.cpp reads alpha 0 as "no alpha / r scaling": a PEFT alpha of 0 (scaling 0) has no faithful encoding.
        if (!(o.Alpha > 0) || !double.IsFinite(o.Alpha))
            throw new UserInputException($"{config}: field \"lora_alpha\" is {o.Alpha}; llama.cpp's LoRA GGUF needs a positive alpha");
        var nk = c.LinearNumKeyHeads;
        var r = c.LinearNumValueHeads / nk;

        var plans = new List<(GgufTensorInfo Info, AdapterModuleTensors Module, bool IsA, ValueTransform Transform, long Start, long Head)>();
        foreach (var m in adapter.Modules)
        {
            var (gguf, transform, start, head) = Qwen35GgufTensors.Map(c, m.ModuleName + ".weight");
            if (transform is not (ValueTransform.None or ValueTransform.ReorderRows or ValueTransform.ReorderColumns))
                throw new UserInputException($"{adapter.Directory}: \"{m.KeyA}\" adapts {m.ModuleName}, which is not a matrix llama.cpp can apply a LoRA to");
            // The reorder needs the reordered axis to hold exactly nv heads after its start (the base model's shape).
            var axis = transform == ValueTransform.ReorderRows ? m.B.shape[0] : transform == ValueTransform.ReorderColumns ? m.A.shape[1] : -1;
            if (axis >= 0 && axis - start != (long)c.LinearNumValueHeads * head)
                throw new UserInputException($"{adapter.Directory}: \"{(transform == ValueTransform.ReorderRows ? m.KeyB : m.KeyA)}\" has shape {Shapes.Format(transform == ValueTransform.ReorderRows ? m.B.shape : m.A.shape)}, which does not fit {m.ModuleName} of the model's config");
            var storage = type.Storage();
            plans.Add((new GgufTensorInfo(gguf + ".lora_a", m.A.shape.Reverse().ToArray(), storage), m, true, transform, start, head));
            plans.Add((new GgufTensorInfo(gguf + ".lora_b", m.B.shape.Reverse().ToArray(), storage), m, false, transform, start, head));
        }

        AtomicFile.Write(outPath, stream => GgufFileWriter.Write(stream, Metadata(name, o.Alpha, type), plans.Select(p => p.Info).ToList(), (i, s) =>
        {
            using var scope = NewDisposeScope();
            var (info, m, isA, transform, start, head) = plans[i];
            Tensor values;
            if (isA)
                values = transform == ValueTransform.ReorderColumns
                    ? Qwen35GgufTensors.ReorderRows(m.A.t(), start, nk, r, head).t()
                    : m.A;
            else
            {
                var fold = FoldFactor(o, m.ModuleName, m.Rank);
                // A plain adapter folds by exactly 1: leave B bit for bit as trained.
                var b = Math.Abs(fold - 1) < 1e-12 ? m.B : m.B.to(ScalarType.Float64).mul(fold).to(ScalarType.Float32);
                values = transform == ValueTransform.ReorderRows ? Qwen35GgufTensors.ReorderRows(b, start, nk, r, head) : b;
            }
            GgufEncoding.Write(s, values.to(ScalarType.Float32).contiguous(), info.Type);
        }), durable: true);
        return new GgufLoraExportResult(Path.GetFullPath(outPath), adapter.Modules.Count, new FileInfo(outPath).Length, o.Alpha);
    }
}
