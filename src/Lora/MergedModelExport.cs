using Qwen35.Models.SafeTensors;
using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Lora;

/// <summary>
/// Writes a model with its adapters merged as a Hugging Face checkpoint in the ORIGINAL layout of the source folder:
/// every tensor name of the source checkpoint (model.language_model.*, lm_head.weight, and the model.visual.* /
/// mtp.* tensors our text-only model skips) in its source dtype, sharded with an index, plus the source's other
/// top-level files (config.json, tokenizer files, chat template, generation config) copied unchanged. Any loader of
/// the source model, ours included, loads the result.
/// </summary>
public static class MergedModelExport
{
    /// <summary>Hugging Face's default shard size for save_pretrained.</summary>
    public const long DefaultMaxShardBytes = 5L * 1000 * 1000 * 1000;

    /// <summary>
    /// Merges the adapters (if not already merged), writes the checkpoint to <paramref name="outDir"/>, then unmerges
    /// the adapters it merged so the in-memory model is left as it was. Returns the files written.
    /// </summary>
    /// <remarks>
    /// Merged weights are written in the source tensor's dtype (a bf16 checkpoint stays bf16; the merge itself was
    /// computed in fp32 and rounded once). All tensors are gathered before writing, so host memory must hold the
    /// model's CPU copy once (a CPU-resident model's weights are not copied when the dtype already matches).
    /// </remarks>
    public static IReadOnlyList<string> Export(nn.Module model, string sourceDir, string outDir, long maxShardBytes = DefaultMaxShardBytes)
    {
        if (Path.GetFullPath(sourceDir).TrimEnd('/') == Path.GetFullPath(outDir).TrimEnd('/'))
            throw new ArgumentException($"the output folder {outDir} is the source folder; write the merged model elsewhere");
        var mergedHere = LoraInjector.Adapters(model).Where(a => !a.Merged).ToList();
        foreach (var a in mergedHere) LoraMerge.Merge(a);
        try
        {
            using var source = SafeTensorsCheckpoint.Open(sourceDir);
            using var scope = NewDisposeScope();
            // Keyed by the SOURCE name: a flat text-only export (model.layers.*) keeps its own spelling.
            var state = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            var missing = new List<string>();
            foreach (var (name, p) in model.named_parameters())
            {
                if (name.Contains(".lora_A.", StringComparison.Ordinal) || name.Contains(".lora_B.", StringComparison.Ordinal)) continue;
                var flat = name.StartsWith(AdapterKeys.LanguageModelPrefix, StringComparison.Ordinal) ? "model." + name[AdapterKeys.LanguageModelPrefix.Length..] : null;
                if (source.Contains(name)) state[name] = p;
                else if (flat != null && source.Contains(flat)) state[flat] = p;
                else missing.Add(name);
            }
            missing.Sort(StringComparer.Ordinal);
            if (missing.Count > 0)
                throw new InvalidOperationException($"the model has parameters the source checkpoint {sourceDir} lacks " +
                                                    $"({string.Join(", ", missing.Take(5))}{(missing.Count > 5 ? ", …" : "")}); is it the model's source?");

            var tensors = new List<(string, Tensor)>();
            foreach (var name in source.Names.Order(StringComparer.Ordinal))
            {
                var info = source.Info(name);
                if (state.TryGetValue(name, out var value))
                {
                    if (!value.shape.SequenceEqual(info.Shape))
                        throw new InvalidOperationException($"{name}: model shape [{string.Join(",", value.shape)}] differs from the source's [{string.Join(",", info.Shape)}]");
                    tensors.Add((name, value.detach().to(info.ScalarType, CPU).contiguous()));
                }
                else tensors.Add((name, source.Load(name))); // skipped by our model (vision tower, MTP head): copied through
            }
            Directory.CreateDirectory(outDir);
            var written = SafeTensorsWriter.WriteSharded(outDir, tensors, maxShardBytes).ToList();
            written.AddRange(CopySideFiles(sourceDir, outDir));
            return written;
        }
        finally
        {
            foreach (var a in mergedHere) LoraMerge.Unmerge(a);
        }
    }

    /// <summary>Copies every top-level file of the source that is not checkpoint data (config, tokenizer, template…).</summary>
    static IEnumerable<string> CopySideFiles(string sourceDir, string outDir)
    {
        var copied = new List<string>();
        foreach (var file in Directory.EnumerateFiles(sourceDir).Order(StringComparer.Ordinal))
        {
            var name = Path.GetFileName(file);
            if (name.EndsWith(".safetensors", StringComparison.Ordinal) || name.EndsWith(".safetensors.index.json", StringComparison.Ordinal)) continue;
            if (name.EndsWith(".bin", StringComparison.Ordinal) || name.EndsWith(".pt", StringComparison.Ordinal) || name.EndsWith(".tmp", StringComparison.Ordinal)) continue;
            var target = Path.Combine(outDir, name);
            var tmp = target + ".tmp";
            File.Copy(file, tmp, overwrite: true);
            File.Move(tmp, target, overwrite: true);
            copied.Add(target);
        }
        return copied;
    }
}
