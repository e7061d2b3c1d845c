using Qwen35.Models.SafeTensors;
using TorchSharp;
using static TorchSharp.torch;
using Qwen35.Models;

namespace Qwen35.Lora;

/// <summary>The two matrices of one module's adapter as read from a file (CPU, fp32).</summary>
public sealed record AdapterModuleTensors(string ModuleName, Tensor A, Tensor B, string KeyA, string KeyB)
{
    public int Rank => (int)A.shape[0];
}

/// <summary>A PEFT LoRA adapter folder read into memory; dispose to free the tensors.</summary>
public sealed class PeftAdapterFile : IDisposable
{
    public required string Directory { get; init; }
    public required LoraOptions Options { get; init; }
    public string? BaseModelNameOrPath { get; init; }
    /// <summary>Per adapted module, in module-name order.</summary>
    public required IReadOnlyList<AdapterModuleTensors> Modules { get; init; }

    public void Dispose()
    {
        foreach (var m in Modules) { m.A.Dispose(); m.B.Dispose(); }
    }
}

/// <summary>
/// Reads and writes PEFT LoRA adapter folders: <c>adapter_model.safetensors</c> (fp32, keys
/// <c>base_model.model.model.language_model.layers.N.&lt;block&gt;.&lt;name&gt;.lora_A.weight</c> [r, in] and
/// <c>.lora_B.weight</c> [out, r], metadata {"format":"pt"}) and <c>adapter_config.json</c>.
/// </summary>
public static class PeftAdapter
{
    public const string WeightsFileName = "adapter_model.safetensors";

    /// <summary>
    /// Writes the model's adapters to <paramref name="dir"/> (created if needed; each file via temp + rename) and
    /// returns the portability warnings for the written adapter. <paramref name="options"/> must describe the
    /// adapters (rank and scaling are checked per module) because it becomes adapter_config.json.
    /// </summary>
    public static IReadOnlyList<string> Save(string dir, nn.Module model, LoraOptions options, string? baseModelNameOrPath)
    {
        var adapters = LoraInjector.Adapters(model);
        if (adapters.Count == 0) throw new InvalidOperationException("the model has no LoRA adapters to save");
        foreach (var a in adapters)
        {
            if (a.Rank != options.RankFor(a.ModuleName))
                throw new ArgumentException($"{a.ModuleName}: adapter rank {a.Rank} differs from the options' rank {options.RankFor(a.ModuleName)}; the config would lie");
            if (Math.Abs(a.Scaling - options.ScalingFor(a.ModuleName)) > 1e-12 * Math.Abs(a.Scaling))
                throw new ArgumentException($"{a.ModuleName}: adapter scaling {a.Scaling} differs from the options' scaling {options.ScalingFor(a.ModuleName)}; the config would lie");
        }
        System.IO.Directory.CreateDirectory(dir);

        using (var scope = NewDisposeScope())
        {
            var tensors = adapters
                .SelectMany(a => new[]
                {
                    (AdapterKeys.ToKey(a.ModuleName, LoraMatrix.A), CpuFloat(a.LoraA.weight)),
                    (AdapterKeys.ToKey(a.ModuleName, LoraMatrix.B), CpuFloat(a.LoraB.weight)),
                })
                .OrderBy(t => t.Item1, StringComparer.Ordinal)
                .ToList();
            SafeTensorsWriter.Write(Path.Combine(dir, WeightsFileName), tensors, SafeTensorsWriter.DefaultMetadata);
        }

        var shortNames = adapters.Select(a => a.ModuleName[(a.ModuleName.LastIndexOf('.') + 1)..]).ToList();
        // PEFT writes json.dumps(indent=2, sort_keys=True); the golden file adds a final newline, and so do we.
        AtomicFile.WriteAllText(Path.Combine(dir, PeftAdapterConfig.FileName), PeftAdapterConfig.ToJson(options, baseModelNameOrPath, shortNames) + "\n");
        return AdapterPortability.Check(options, adapters.Select(a => (a.ModuleName, a.Rank)));
    }

    /// <summary>
    /// Reads a PEFT LoRA adapter folder. Accepts <c>base_model.model.model.language_model.</c> and text-only
    /// <c>base_model.model.model.layers.</c> keys (both become <c>model.language_model.…</c> module names). Every
    /// problem is an <see cref="AdapterFormatException"/> naming the file and the key or field.
    /// </summary>
    public static PeftAdapterFile Load(string dir)
    {
        var configPath = Path.Combine(dir, PeftAdapterConfig.FileName);
        var weightsPath = Path.Combine(dir, WeightsFileName);
        if (!File.Exists(configPath)) throw new AdapterFormatException($"{dir}: no {PeftAdapterConfig.FileName} (is this a PEFT adapter folder?)");
        if (!File.Exists(weightsPath))
            throw new AdapterFormatException(File.Exists(Path.Combine(dir, "adapter_model.bin"))
                ? $"{dir}: only adapter_model.bin (pickle) is present; convert it to {WeightsFileName} (PEFT save_pretrained(safe_serialization=True))"
                : $"{dir}: no {WeightsFileName}");

        var modules = new List<AdapterModuleTensors>();
        try
        {
            using var file = SafeTensorsFile.Open(weightsPath);
            var byModule = new SortedDictionary<string, (string? KeyA, string? KeyB)>(StringComparer.Ordinal);
            foreach (var key in file.Tensors.Keys)
            {
                var (module, matrix) = AdapterKeys.Parse(key, weightsPath);
                var entry = byModule.GetValueOrDefault(module);
                byModule[module] = matrix == LoraMatrix.A ? entry with { KeyA = key } : entry with { KeyB = key };
            }
            if (byModule.Count == 0) throw new AdapterFormatException($"{weightsPath}: holds no tensors");

            var shortNames = byModule.Keys.Select(m => m[(m.LastIndexOf('.') + 1)..]);
            var (options, baseModel) = PeftAdapterConfig.Parse(File.ReadAllText(configPath), configPath, shortNames);

            foreach (var (module, (keyA, keyB)) in byModule)
            {
                if (keyA == null || keyB == null)
                    throw new AdapterFormatException($"{weightsPath}: module \"{module}\" has {(keyA ?? keyB)} but no {(keyA == null ? "lora_A" : "lora_B")}.weight");
                var infoA = file.Tensors[keyA];
                var infoB = file.Tensors[keyB];
                foreach (var info in new[] { infoA, infoB })
                {
                    if (info.Shape.Length != 2) throw new AdapterFormatException($"{weightsPath}: \"{info.Name}\" has shape {Shapes.Format(info.Shape)}, expected a matrix");
                    if (info.Dtype is not ("F32" or "BF16" or "F16" or "F64"))
                        throw new AdapterFormatException($"{weightsPath}: \"{info.Name}\" has dtype {info.Dtype}, expected a floating-point type");
                }
                var rank = infoA.Shape[0];
                if (infoB.Shape[1] != rank)
                    throw new AdapterFormatException($"{weightsPath}: \"{keyB}\" has shape {Shapes.Format(infoB.Shape)} but \"{keyA}\" has rank {rank} (B must be [out, {rank}])");
                var expected = options.RankFor(module);
                if (rank != expected)
                    throw new AdapterFormatException($"{weightsPath}: \"{keyA}\" has rank {rank} but {configPath} gives {expected} (r / rank_pattern)");
                modules.Add(new AdapterModuleTensors(module, LoadFloat(file, keyA), LoadFloat(file, keyB), keyA, keyB));
            }
            return new PeftAdapterFile { Directory = dir, Options = options, BaseModelNameOrPath = baseModel, Modules = modules };
        }
        catch (SafeTensorsFormatException e)
        {
            foreach (var m in modules) { m.A.Dispose(); m.B.Dispose(); }
            throw new AdapterFormatException($"{weightsPath}: {e.Message}", e);
        }
        catch
        {
            foreach (var m in modules) { m.A.Dispose(); m.B.Dispose(); }
            throw;
        }
    }

    // Detached fp32 CPU copy, contiguous, as safetensors needs.
    static Tensor CpuFloat(Tensor t) => t.detach().to(ScalarType.Float32, CPU, copy: true).contiguous();

    // A private fp32 copy that outlives the file's memory map.
    static Tensor LoadFloat(SafeTensorsFile file, string key)
    {
        using var view = file.Load(key);
        return view.to(ScalarType.Float32, copy: true).contiguous();
    }
}
