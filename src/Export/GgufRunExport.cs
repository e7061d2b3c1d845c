using Qwen35.Export.Gguf;
using Qwen35.Lora;
using Qwen35.Models;
using Qwen35.Models.Config;

namespace Qwen35.Export;

/// <summary>
/// The GGUF files a training run ends with (recipe <c>export.gguf</c>): prepared at setup, so a model llama.cpp
/// cannot hold is refused before training rather than after it, and written once the adapter is saved.
/// </summary>
public sealed class GgufRunExport
{
    readonly ExportOptions _options;
    readonly Qwen35TextConfig _config;
    readonly string _name;
    readonly string? _tokenizerDir;

    GgufRunExport(ExportOptions options, Qwen35TextConfig config, string name, string? tokenizerDir) =>
        (_options, _config, _name, _tokenizerDir) = (options, config, name, tokenizerDir);

    /// <summary>Null when the recipe asks for no GGUF file. <paramref name="where"/> names the model's config in a
    /// refusal; <paramref name="name"/> becomes <c>general.name</c>; <paramref name="tokenizerDir"/> is the Hugging Face
    /// tokenizer folder written into the model files (null: none).</summary>
    public static GgufRunExport? Prepare(ExportOptions options, Qwen35TextConfig config, string where, string name, string? tokenizerDir)
    {
        if (options.Gguf.Count == 0) return null;
        GgufModelExport.CheckSupported(config, where);
        return new GgufRunExport(options, config, name, tokenizerDir);
    }

    /// <summary>Writes each file into <paramref name="outputDir"/>: model files from <paramref name="model"/> with its
    /// adapters merged in (and unmerged after), LoRA files from the saved <paramref name="adapterDir"/>. Returns one
    /// line per file written.</summary>
    public IReadOnlyList<string> Write(Qwen35ForCausalLM model, string adapterDir, string outputDir)
    {
        var written = new List<string>();
        foreach (var output in _options.Gguf)
        {
            var path = Path.Combine(outputDir, ExportOptions.FileName(output));
            var (loraOnly, type) = ExportOptions.Kind(output);
            if (loraOnly)
            {
                using var adapter = PeftAdapter.Load(adapterDir);
                var r = GgufLoraExport.Export(adapter, _config, path, type, _name + "-lora");
                written.Add($"{r.Path}: LoRA adapter, {r.Modules} modules, {OptionNames.Name(type)}, {r.Bytes:N0} bytes");
            }
            else
            {
                var r = GgufModelExport.Export(model, path, type, _name, _tokenizerDir);
                written.Add($"{r.Path}: {OptionNames.Name(type)}, {r.MergedAdapters} adapters merged, {r.Bytes:N0} bytes" +
                            (_tokenizerDir is null ? ", no tokenizer" : ""));
            }
        }
        return written;
    }
}
