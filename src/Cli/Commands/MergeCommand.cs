using System.CommandLine;
using Qwen35.Lora;
using Qwen35.Models;
using static TorchSharp.torch;

namespace Qwen35.Cli.Commands;

/// <summary>
/// `trainer merge --model DIR --adapter DIR --out DIR [--overwrite]`: folds a PEFT LoRA adapter into the base weights
/// and writes a Hugging Face checkpoint in the source's own key layout (vision tower and MTP tensors copied through,
/// config and tokenizer files copied), loadable by any Qwen3.5 loader. An existing non-empty --out is refused unless
/// --overwrite, --out = --model always; the checkpoint appears under --out only once it is complete. The list of
/// written files goes to stdout, progress to stderr.
/// </summary>
public static class MergeCommand
{
    public static Command Build()
    {
        var model = new Option<DirectoryInfo>("--model") { Description = "Base model folder (config.json + safetensors)", Required = true };
        var adapter = new Option<DirectoryInfo>("--adapter") { Description = "PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors)", Required = true };
        var output = new Option<DirectoryInfo>("--out") { Description = "Output folder for the merged checkpoint", Required = true };
        var dtype = new Option<string>("--dtype")
        {
            Description = "Dtype to load the base in: auto (the checkpoint's), bf16, fp32. The merge is computed in fp32 and each tensor is written in its source dtype.",
            DefaultValueFactory = _ => "auto",
        };
        var shard = new Option<long>("--max-shard-bytes")
        {
            Description = "Largest shard in bytes (Hugging Face's default 5e9)",
            DefaultValueFactory = _ => MergedModelExport.DefaultMaxShardBytes,
        };
        var overwrite = new Option<bool>("--overwrite") { Description = "Replace an existing non-empty --out folder (never the --model folder)" };
        var cmd = new Command("merge", "Merge a LoRA adapter into its base model and write a full checkpoint") { model, adapter, output, dtype, shard, overwrite };
        cmd.SetAction(pr => Run(pr.GetValue(model)!.FullName, pr.GetValue(adapter)!.FullName, pr.GetValue(output)!.FullName,
            pr.GetValue(dtype)!, pr.GetValue(shard), pr.GetValue(overwrite), pr.InvocationConfiguration.Output, pr.InvocationConfiguration.Error));
        return cmd;
    }

    /// <summary>The merge verb's body; returns the exit code (0 ok, 2 bad input named in the message, 3 runtime failure).</summary>
    public static int Run(string modelDir, string adapterDir, string outDir, string dtypeName, long maxShardBytes, bool overwrite,
        TextWriter stdout, TextWriter stderr)
    {
        return CliErrors.Run("merge", stderr, () =>
        {
            // Before loading anything: a refused --out should not cost a model load.
            MergedModelExport.CheckOutput(modelDir, outDir, overwrite);
            var dtype = ResolveDtype(dtypeName, modelDir);
            stderr.WriteLine($"merge: loading {modelDir} ({dtype})");
            var (m, report) = Qwen35ForCausalLM.FromPretrained(modelDir, dtype, CPU);
            using (m)
            {
                stderr.WriteLine($"merge: {report}");
                var loaded = LoraInjector.LoadAdapter(m, adapterDir);
                stderr.WriteLine(loaded.Report.Format());
                var written = MergedModelExport.Export(m, modelDir, outDir, maxShardBytes, overwrite);
                stdout.WriteLine($"merged {loaded.Report.Modules.Count} adapters from {adapterDir} into {outDir}");
                foreach (var f in written) stdout.WriteLine(f);
            }
            return 0;
        });
    }

    /// <summary>"auto" = the dtype most text tensors of the checkpoint use; otherwise the named precision.</summary>
    static ScalarType ResolveDtype(string name, string modelDir)
    {
        if (!name.Equals("auto", StringComparison.OrdinalIgnoreCase)) return OptionNames.Parse<Precision>(name, "--dtype").ToScalarType();
        using var plan = CheckpointPlan.Open(modelDir);
        var dtype = plan.Mapping.Values.GroupBy(n => plan.Checkpoint.Info(n).Dtype).OrderByDescending(g => g.Count()).First().Key;
        // The model supports fp32 and bf16 only; an fp16 checkpoint is loaded (and merged) in fp32.
        return dtype == "BF16" ? ScalarType.BFloat16 : ScalarType.Float32;
    }
}
