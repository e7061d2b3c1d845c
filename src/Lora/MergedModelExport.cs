using Qwen35.Models.SafeTensors;
using TorchSharp;
using static TorchSharp.torch;
using Qwen35.Models;

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
    /// Everything is written into a temporary sibling folder that is renamed to <paramref name="outDir"/> at the end,
    /// so a failure (a full disk, an unreadable side file) leaves no half-written checkpoint behind. An existing
    /// non-empty <paramref name="outDir"/> is refused unless <paramref name="overwrite"/>, and is then replaced only
    /// once the new checkpoint is complete; the source folder itself is always refused (<see cref="CheckOutput"/>).
    /// </remarks>
    public static IReadOnlyList<string> Export(nn.Module model, string sourceDir, string outDir, long maxShardBytes = DefaultMaxShardBytes,
        bool overwrite = false)
    {
        CheckOutput(sourceDir, outDir, overwrite);
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
                        throw new InvalidOperationException($"{name}: model shape {Shapes.Format(value.shape)} differs from the source's {Shapes.Format(info.Shape)}");
                    tensors.Add((name, value.detach().to(info.ScalarType, CPU).contiguous()));
                }
                else tensors.Add((name, source.Load(name))); // skipped by our model (vision tower, MTP head): copied through
            }
            return WriteThenRename(outDir, temp =>
            {
                var written = SafeTensorsWriter.WriteSharded(temp, tensors, maxShardBytes).ToList();
                written.AddRange(CopySideFiles(sourceDir, temp));
                return written;
            });
        }
        finally
        {
            foreach (var a in mergedHere) LoraMerge.Unmerge(a);
        }
    }

    /// <summary>
    /// Merges and writes a model that has no source checkpoint (<c>builtin:tiny</c>): every base parameter under its
    /// own name (the published layout, <c>model.language_model.*</c>), in its own dtype, plus
    /// <paramref name="configJson"/> as config.json, so any Qwen3.5 loader (this one included) reads it back. Written
    /// and refused like <see cref="Export"/>.
    /// </summary>
    public static IReadOnlyList<string> ExportWithoutSource(nn.Module model, string configJson, string outDir,
        long maxShardBytes = DefaultMaxShardBytes, bool overwrite = false)
    {
        CheckOutput(sourceDir: null, outDir, overwrite);
        var mergedHere = LoraInjector.Adapters(model).Where(a => !a.Merged).ToList();
        foreach (var a in mergedHere) LoraMerge.Merge(a);
        try
        {
            using var scope = NewDisposeScope();
            var tensors = model.named_parameters()
                .Where(p => !p.name.Contains(".lora_A.", StringComparison.Ordinal) && !p.name.Contains(".lora_B.", StringComparison.Ordinal))
                .OrderBy(p => p.name, StringComparer.Ordinal)
                .Select(p => (p.name, p.parameter.detach().to(CPU).contiguous()))
                .ToList();
            return WriteThenRename(outDir, temp =>
            {
                var written = SafeTensorsWriter.WriteSharded(temp, tensors, maxShardBytes).ToList();
                var config = Path.Combine(temp, "config.json");
                AtomicFile.WriteAllText(config, configJson);
                written.Add(config);
                return written;
            });
        }
        finally
        {
            foreach (var a in mergedHere) LoraMerge.Unmerge(a);
        }
    }

    /// <summary>
    /// Refuses an output folder that is the source model's own folder (always), an existing file, or an existing
    /// non-empty folder (unless <paramref name="overwrite"/>), with a <see cref="UserInputException"/> naming it. Cheap:
    /// callers run it before loading a model.
    /// </summary>
    public static void CheckOutput(string? sourceDir, string outDir, bool overwrite)
    {
        if (sourceDir is not null && SameFolder(sourceDir, outDir))
            throw new UserInputException($"{outDir}: the output folder is the model's own folder (--model); write the merged checkpoint elsewhere");
        if (File.Exists(outDir))
            throw new UserInputException($"{outDir}: the output path is a file, not a folder");
        if (!overwrite && Directory.Exists(outDir) && Directory.EnumerateFileSystemEntries(outDir).Any())
            throw new UserInputException($"{outDir}: the output folder exists and is not empty; pass --overwrite to replace it");
    }

    static bool SameFolder(string a, string b)
    {
        static string Real(string dir)
        {
            var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(dir));
            // A symlink to the source folder is the source folder.
            var target = Directory.Exists(full) ? new DirectoryInfo(full).ResolveLinkTarget(returnFinalTarget: true)?.FullName : null;
            return target is null ? full : Path.TrimEndingDirectorySeparator(Path.GetFullPath(target));
        }
        return string.Equals(Real(a), Real(b), StringComparison.Ordinal);
    }

    /// <summary>
    /// Runs <paramref name="write"/> on a fresh temporary sibling of <paramref name="outDir"/>, then puts that folder in
    /// place of <paramref name="outDir"/> (an existing one is moved aside first and deleted after). On any failure the
    /// temporary folder is removed and an existing <paramref name="outDir"/> is left as it was. Returns the written
    /// paths as they are under <paramref name="outDir"/>.
    /// </summary>
    static List<string> WriteThenRename(string outDir, Func<string, IReadOnlyList<string>> write)
    {
        var target = Path.TrimEndingDirectorySeparator(Path.GetFullPath(outDir));
        var parent = Path.GetDirectoryName(target)!;
        var name = Path.GetFileName(target);
        Directory.CreateDirectory(parent);
        var temp = Path.Combine(parent, $".{name}.{Guid.NewGuid():N}.tmp");
        Directory.CreateDirectory(temp);
        List<string> written;
        try
        {
            written = write(temp).Select(f => Path.Combine(outDir, Path.GetRelativePath(temp, f))).ToList();
            if (Directory.Exists(target))
            {
                var old = Path.Combine(parent, $".{name}.{Guid.NewGuid():N}.old");
                Directory.Move(target, old);
                try { Directory.Move(temp, target); }
                catch
                {
                    Directory.Move(old, target);
                    throw;
                }
                DeleteQuietly(old);
            }
            else Directory.Move(temp, target);
        }
        catch
        {
            DeleteQuietly(temp);
            throw;
        }
        return written;
    }

    static void DeleteQuietly(string dir)
    {
        try { if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); }
        // Best effort: the export's own outcome (or its original error) matters more than a leftover temporary folder.
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    /// <summary>Copies every top-level file of the source that is not checkpoint data (config, tokenizer, template…)
    /// into the (temporary, still private) output folder.</summary>
    static IEnumerable<string> CopySideFiles(string sourceDir, string outDir)
    {
        var copied = new List<string>();
        foreach (var file in Directory.EnumerateFiles(sourceDir).Order(StringComparer.Ordinal))
        {
            var name = Path.GetFileName(file);
            if (name.EndsWith(".safetensors", StringComparison.Ordinal) || name.EndsWith(".safetensors.index.json", StringComparison.Ordinal)) continue;
            if (name.EndsWith(".bin", StringComparison.Ordinal) || name.EndsWith(".pt", StringComparison.Ordinal) || name.EndsWith(".tmp", StringComparison.Ordinal)) continue;
            var target = Path.Combine(outDir, name);
            File.Copy(file, target);
            copied.Add(target);
        }
        return copied;
    }
}
