using System.CommandLine;
using Qwen35.Lora;
using Qwen35.Models;
using Qwen35.Models.SafeTensors;
using static TorchSharp.torch;

namespace Qwen35.Cli.Commands;

/// <summary>
/// `trainer merge --model DIR --adapter DIR --out DIR`: folds a PEFT LoRA adapter into the base weights and writes a
/// Hugging Face checkpoint in the source's own key layout (vision tower and MTP tensors copied through, config and
/// tokenizer files copied), loadable by any Qwen3.5 loader.
/// </summary>
public static class LoraCommands
{
    public static Command Build()
    {
        var model = new Option<DirectoryInfo>("--model") { Description = "Base model folder (config.json + safetensors)", Required = true };
        var adapter = new Option<DirectoryInfo>("--adapter") { Description = "PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors)", Required = true };
        var output = new Option<DirectoryInfo>("--out") { Description = "Output folder for the merged checkpoint", Required = true };
        var dtype = new Option<string>("--dtype")
        {
            Description = "Dtype to load the base in: auto (the checkpoint's), bf16, fp16, fp32. The merge itself is computed in fp32 and written in each tensor's source dtype.",
            DefaultValueFactory = _ => "auto",
        };
        var shard = new Option<long>("--max-shard-bytes")
        {
            Description = "Largest shard in bytes (Hugging Face default 5e9)",
            DefaultValueFactory = _ => MergedModelExport.DefaultMaxShardBytes,
        };
        var cmd = new Command("merge", "Merge a LoRA adapter into its base model and write a full checkpoint") { model, adapter, output, dtype, shard };
        cmd.SetAction(pr => CliRun.Guard(() =>
        {
            var modelDir = pr.GetValue(model)!.FullName;
            var adapterDir = pr.GetValue(adapter)!.FullName;
            var outDir = pr.GetValue(output)!.FullName;
            var scalar = CliRun.ResolveDtype(pr.GetValue(dtype)!, modelDir);
            Console.Error.WriteLine($"loading {modelDir} ({scalar}) ...");
            var (m, report) = Qwen35ForCausalLM.FromPretrained(modelDir, scalar, CPU);
            using (m)
            {
                Console.Error.WriteLine(report.ToString());
                var loaded = LoraInjector.LoadAdapter(m, adapterDir);
                Console.Error.WriteLine(loaded.Report.Format());
                var written = MergedModelExport.Export(m, modelDir, outDir, pr.GetValue(shard));
                Console.WriteLine($"merged {loaded.Report.Modules.Count} adapters from {adapterDir} into {outDir}");
                foreach (var f in written) Console.WriteLine(f);
            }
            return 0;
        }));
        return cmd;
    }
}

/// <summary>Shared plumbing of the LoRA verbs: exit codes and dtype choice.</summary>
static class CliRun
{
    /// <summary>Runs a verb body, mapping bad input (file/key named in the message) to exit 2, other failures to 3.</summary>
    public static int Guard(Func<int> body)
    {
        try { return body(); }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException or ArgumentException
                                       or System.Text.Json.JsonException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 2;
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"failed: {e}");
            return 3;
        }
    }

    /// <summary>"auto" = the dtype most text tensors of the checkpoint use; else bf16 / fp16 / fp32.</summary>
    public static ScalarType ResolveDtype(string name, string modelDir) => name.ToLowerInvariant() switch
    {
        "bf16" or "bfloat16" => ScalarType.BFloat16,
        "fp16" or "float16" => ScalarType.Float16,
        "fp32" or "float32" => ScalarType.Float32,
        "auto" => CheckpointDtype(modelDir),
        _ => throw new ArgumentException($"--dtype \"{name}\": expected auto, bf16, fp16 or fp32"),
    };

    static ScalarType CheckpointDtype(string modelDir)
    {
        using var ck = SafeTensorsCheckpoint.Open(modelDir);
        var dtype = ck.Names.Where(n => !Qwen35ForCausalLM.SkippedPrefixes.Any(p => n.StartsWith(p, StringComparison.Ordinal)))
            .GroupBy(n => ck.Info(n).Dtype).OrderByDescending(g => g.Count()).First().Key;
        return SafeTensorsDtype.ToScalarType(dtype);
    }
}
