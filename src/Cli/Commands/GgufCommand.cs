using System.CommandLine;
using Qwen35.Export.Gguf;
using Qwen35.Lora;
using Qwen35.Models;
using Qwen35.Training;

namespace Qwen35.Cli.Commands;

/// <summary>
/// `trainer gguf --model DIR|builtin:tiny [--adapter DIR [--lora-only]] --out FILE [--type f32|f16|bf16|q8_0] [--overwrite] [--check [--check-base FILE]]`:
/// the model, with the adapter merged in when given (or, with --lora-only, the adapter alone as a llama.cpp LoRA GGUF), as one GGUF file for llama.cpp (architecture qwen35; docs/gguf.md). Refused
/// before anything loads: an unknown --type, an existing --out without --overwrite, a model llama.cpp cannot hold. The
/// file appears only once it is complete. --check then runs it in llama.cpp against the trainer (<see cref="GgufCheckStep"/>).
/// </summary>
public static class GgufCommand
{
    public static Command Build()
    {
        var session = new SessionFlags(adapter: true, tokenizer: true, dtypeDefault: "fp32");
        session.Dtype.Description = "Dtype to load the base in (fp32 or bf16); the merge and every transform are computed in fp32";
        var output = new Option<FileInfo>("--out") { Description = "Output GGUF file", Required = true };
        var type = new Option<string>("--type")
        {
            Description = $"Storage type of the weight matrices: {string.Join(", ", OptionNames.Names<GgufType>())} (norms, 1-D tensors and the conv stay f32; q8_0 falls back to f16 for rows that are not a multiple of 32)",
            DefaultValueFactory = _ => "f32",
        };
        var overwrite = new Option<bool>("--overwrite") { Description = "Replace an existing --out file" };
        var loraOnly = new Option<bool>("--lora-only") { Description = "Write only the --adapter, as a llama.cpp LoRA GGUF (.lora_a/.lora_b, --type f32 or f16) to apply to the base model's GGUF" };
        var check = new Option<bool>("--check") { Description = "After writing, run the file in llama.cpp on a few sequences against the trainer's fp32 forward (max logit error, argmax agreement, loss); exit 4 when out of bounds" };
        var checkBase = new Option<FileInfo?>("--check-base") { Description = "With --lora-only --check: the base model's GGUF the LoRA file is applied to in the check" };
        var cmd = new Command("gguf", "Write the model (with a LoRA adapter merged in), or the adapter alone, as a GGUF file for llama.cpp") { output, type, overwrite, loraOnly, check, checkBase };
        session.AddTo(cmd);
        cmd.SetAction(pr => CliErrors.Run("gguf", pr.InvocationConfiguration.Error, () =>
        {
            var gguf = OptionNames.Parse<GgufType>(pr.GetValue(type)!, "--type");
            var (options, outPath, lora, checkBasePath) = (session.Read(pr), pr.GetValue(output)!.FullName, pr.GetValue(loraOnly), pr.GetValue(checkBase)?.FullName);
            GgufCheckStep.Validate(pr.GetValue(check), lora, checkBasePath);
            var code = Run(options, outPath, gguf, pr.GetValue(overwrite), pr.InvocationConfiguration.Output, pr.InvocationConfiguration.Error, lora);
            return code != CliErrors.Ok || !pr.GetValue(check) ? code
                : GgufCheckStep.Run(options, outPath, gguf, lora, checkBasePath, pr.InvocationConfiguration.Output, pr.InvocationConfiguration.Error);
        }));
        return cmd;
    }

    /// <summary>Checks the output and the model's shape and writes the GGUF: a model folder streamed tensor by tensor
    /// from its safetensors with the adapter merged per weight (<see cref="GgufStreamedExport"/>), builtin:tiny from the
    /// loaded model. Returns the exit code.</summary>
    public static int Run(SessionOptions options, string outPath, GgufType type, bool overwrite, TextWriter stdout, TextWriter stderr, bool loraOnly = false)
    {
        if (loraOnly && options.Adapter is null) throw new UserInputException("--lora-only: no --adapter given; it writes the adapter alone");
        if (loraOnly && type is not (GgufType.F32 or GgufType.F16))
            throw new UserInputException($"--type {OptionNames.Name(type)}: with --lora-only the adapter is written as f32 or f16 only");
        if (Directory.Exists(outPath)) throw new UserInputException($"{outPath}: --out is a folder; give the GGUF file's path");
        if (File.Exists(outPath) && !overwrite) throw new UserInputException($"{outPath}: --out exists; pass --overwrite to replace it");
        var session = Session.Open(options with { Device = "cpu" });
        var name = session.ModelDir is { } dir ? Path.GetFileName(Path.TrimEndingDirectorySeparator(dir)) : "builtin-tiny";
        GgufModelExport.CheckSupported(session.Config, session.ModelDir is { } d ? Path.Combine(d, "config.json") : Session.BuiltinTiny);
        if (loraOnly)
        {
            // The base weights are not needed: the config gives the reorder, the adapter file gives the factors.
            using var adapter = PeftAdapter.Load(session.AdapterDir!);
            var lora = GgufLoraExport.Export(adapter, session.Config, outPath, type, name + "-lora");
            stdout.WriteLine($"wrote {lora.Path}: LoRA adapter, {lora.Modules} modules, alpha {lora.Alpha}, {OptionNames.Name(type)}, {lora.Bytes:N0} bytes");
            return CliErrors.Ok;
        }
        using var log = CliLog.For("gguf", stderr);
        // A Hugging Face tokenizer (the model folder's or --tokenizer's) goes into the file so llama.cpp can take text;
        // the built-in byte tokenizer of builtin:tiny has no GGUF form, so that file takes token ids only.
        var tokenizerDir = session.TokenizerIfAny is Qwen35.Data.QwenTokenizer q ? Path.GetDirectoryName(q.Source) : null;
        GgufExportResult result;
        if (session.ModelDir is { } modelDir)
        {
            // A model folder is streamed tensor by tensor from its safetensors (host memory ~ one tensor, not the model).
            log.Information("model: streaming {Dir} ({Dtype}){Adapter}", modelDir, OptionNames.Name(options.Precision),
                session.AdapterDir is { } a ? $", merging the adapter {a}" : "");
            var streamed = GgufStreamedExport.Export(modelDir, session.AdapterDir, outPath, type, name, session.Dtype, tokenizerDir);
            foreach (var (prefix, count) in streamed.Skipped)
                log.Information("model: left out {Count} {Prefix}* tensors (vision tower / MTP head: not part of the text model llama.cpp runs)", count, prefix);
            result = streamed.File;
        }
        else
        {
            using var model = session.LoadModel(log);
            result = GgufModelExport.Export(model, outPath, type, name, tokenizerDir);
        }
        stdout.WriteLine($"wrote {result.Path}: {result.Tensors} tensors, {OptionNames.Name(type)}, {result.Bytes:N0} bytes" +
                         (tokenizerDir is null ? ", no tokenizer" : $", tokenizer from {tokenizerDir}") +
                         (result.MergedAdapters > 0 ? $", {result.MergedAdapters} adapters from {session.AdapterDir} merged" : ""));
        return CliErrors.Ok;
    }
}
