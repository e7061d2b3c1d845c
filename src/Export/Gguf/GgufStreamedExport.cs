using Qwen35.Lora;
using Qwen35.Models;
using static TorchSharp.torch;

namespace Qwen35.Export.Gguf;

/// <summary>What <see cref="GgufStreamedExport.Export"/> wrote, and what it left out of the checkpoint (tensors per
/// skipped prefix: <c>model.visual.</c>, <c>mtp.</c>).</summary>
public sealed record GgufStreamedExportResult(GgufExportResult File, IReadOnlyDictionary<string, int> Skipped);

/// <summary>
/// The GGUF export of a Hugging Face Qwen3.5 folder (single <c>model.safetensors</c> or sharded with an index) without
/// building the model: the plan comes from config.json and the safetensors headers (<see cref="CheckpointPlan"/>,
/// the loader's own name mapping, so <c>model.language_model.*</c>, flat text-only names and the skipped vision / MTP
/// tensors are handled as when loading), then each tensor is read on its own (positioned reads, not the memory map),
/// cast to the dtype the loader would give it, merged with its adapter factors when an adapter is given
/// (<see cref="LoraAdapter.DeltaWeight(Tensor, Tensor, double)"/> and <see cref="LoraMerge.Updated"/>: the merge's own
/// math), transformed by <see cref="Qwen35GgufTensors"/>, encoded, written and freed. A tensor over
/// <c>rowBlockBytes</c> whose transform is elementwise and that no adapter touches (the embedding and the output
/// head) is read and written a block of rows at a time. Host memory is therefore about the largest merged matrix
/// (fp32, with its delta) or one row block, not the model. The bytes are those of
/// <see cref="GgufModelExport.Export"/> on the loaded model with the adapter attached (a test compares them).
/// </summary>
public static class GgufStreamedExport
{
    /// <summary>fp32 bytes above which an elementwise tensor is read in blocks of rows of about this size (64 MiB).</summary>
    public const long DefaultRowBlockBytes = 64L << 20;

    /// <param name="modelDir">The Hugging Face folder (config.json + safetensors).</param>
    /// <param name="adapterDir">A PEFT adapter folder to merge, or null.</param>
    /// <param name="rowBlockBytes">The row-block size (<see cref="DefaultRowBlockBytes"/>; tests make it small so the
    /// golden model's matrices take the row-block path).</param>
    /// <param name="loadDtype">The dtype the loader would give the base (<c>--dtype</c>): each weight is cast to it (the
    /// fp32-kept parameters stay fp32) before the merge, as in the loaded model, so the output is the same.</param>
    public static GgufStreamedExportResult Export(string modelDir, string? adapterDir, string outPath, GgufType type, string name,
        ScalarType loadDtype, string? tokenizerDir = null, long rowBlockBytes = DefaultRowBlockBytes)
    {
        using var plan = CheckpointPlan.Open(modelDir);
        if (plan.Problem is { } problem) throw new UserInputException(problem);
        var c = plan.Config;
        GgufModelExport.CheckSupported(c, plan.ConfigPath);
        var manifest = ParameterManifest.For(c);
        var plans = Qwen35GgufTensors.Plan(c, manifest.Select(e => (e.Name, e.Shape)), type);
        var keptFp32 = manifest.Where(e => e.KeptFp32).Select(e => e.Name).ToHashSet(StringComparer.Ordinal);

        using var adapter = adapterDir is null ? null : PeftAdapter.Load(adapterDir);
        var merges = adapter is null ? new Dictionary<string, AdapterModuleTensors>() : Matches(adapter, manifest);
        var metadata = GgufModelExport.Metadata(c, type, name, tokenizerDir);
        AtomicFile.Write(outPath, stream => GgufFileWriter.Write(stream, metadata, plans.Select(p => p.Info).ToList(), (i, s) =>
        {
            var p = plans[i];
            var source = plan.Mapping[p.HfName];
            var dtype = keptFp32.Contains(p.HfName) ? ScalarType.Float32 : loadDtype;
            var info = plan.Checkpoint.Info(source);
            var merge = merges.GetValueOrDefault(p.HfName);
            if (merge is null && Qwen35GgufTensors.IsElementwise(p.Transform) && info.Shape.Length > 1 && info.NumElements * 4 > rowBlockBytes)
            {
                var rowElements = info.NumElements / info.Shape[0];
                var block = Math.Max(1, rowBlockBytes / (4 * rowElements));
                for (long first = 0; first < info.Shape[0]; first += block)
                {
                    using var scope = NewDisposeScope();
                    var rows = plan.Checkpoint.ReadRows(source, first, Math.Min(block, info.Shape[0] - first)).to(dtype);
                    Qwen35GgufTensors.Write(s, p, rows, c);
                }
                return;
            }
            using (var scope = NewDisposeScope())
            {
                var w = plan.Checkpoint.Read(source).to(dtype);
                if (merge is not null)
                    w = LoraMerge.Updated(w, LoraAdapter.DeltaWeight(merge.A, merge.B, Scaling(adapter!.Options, merge)));
                Qwen35GgufTensors.Write(s, p, w, c);
            }
        }), durable: true);
        var result = new GgufExportResult(Path.GetFullPath(outPath), plans.Count, new FileInfo(outPath).Length, merges.Count);
        return new GgufStreamedExportResult(result, plan.Skipped);
    }

    // The scaling LoraInjector.LoadAdapter gives the attached adapter (its alpha, the file's rank, rsLoRA).
    static double Scaling(LoraOptions o, AdapterModuleTensors m) => LoraOptions.Scaling(o.AlphaFor(m.ModuleName), m.Rank, o.UseRsLora);

    /// <summary>The adapter's modules by the weight they change, checked as <see cref="LoraInjector.LoadAdapter"/> checks
    /// them against a loaded model (a decoder projection of the model, A's columns its inputs, B's rows its outputs),
    /// with the same messages, before anything is written.</summary>
    static Dictionary<string, AdapterModuleTensors> Matches(PeftAdapterFile adapter, IReadOnlyList<ParameterManifest.Entry> manifest)
    {
        // The decoder projections: every matrix inside a layer (the conv is 3-D; the embedding and head are outside).
        var projections = manifest.Where(e => e.Shape.Length == 2 && e.Name.Contains(".layers.", StringComparison.Ordinal))
            .ToDictionary(e => e.Name[..^".weight".Length], StringComparer.Ordinal);
        var weights = Path.Combine(adapter.Directory, PeftAdapter.WeightsFileName);
        var merges = new Dictionary<string, AdapterModuleTensors>(StringComparer.Ordinal);
        foreach (var m in adapter.Modules)
        {
            if (!projections.TryGetValue(m.ModuleName, out var p))
                throw new AdapterFormatException($"{weights}: key \"{m.KeyA}\" names module \"{m.ModuleName}\", which this model does not have " +
                                                 $"(it has {projections.Count} projections, e.g. {projections.Keys.FirstOrDefault()})");
            if (m.A.shape[1] != p.Shape[1])
                throw new AdapterFormatException($"{weights}: \"{m.KeyA}\" has shape {Shapes.Format(m.A.shape)} but {m.ModuleName} has {p.Shape[1]} inputs (expected {Shapes.Format([m.Rank, p.Shape[1]])})");
            if (m.B.shape[0] != p.Shape[0])
                throw new AdapterFormatException($"{weights}: \"{m.KeyB}\" has shape {Shapes.Format(m.B.shape)} but {m.ModuleName} has {p.Shape[0]} outputs (expected {Shapes.Format([p.Shape[0], m.Rank])})");
            merges[p.Name] = m;
        }
        return merges;
    }
}
