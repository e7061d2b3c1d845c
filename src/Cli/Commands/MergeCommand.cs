using System.CommandLine;
using Qwen35.Lora;
using Qwen35.Models;
using Qwen35.Training;
using static TorchSharp.torch;

namespace Qwen35.Cli.Commands;

/// <summary>
/// `trainer merge --model DIR|builtin:tiny --adapter DIR --out DIR [--overwrite]`: folds a PEFT LoRA adapter into the base weights
/// and writes a Hugging Face checkpoint in the source's own key layout (vision tower and MTP tensors copied through,
/// config and tokenizer files copied), loadable by any Qwen3.5 loader. An existing non-empty --out is refused unless
/// --overwrite, --out = --model always; the checkpoint appears under --out only once it is complete. The list of
/// written files goes to stdout, progress to stderr.
/// </summary>
public static class MergeCommand
{
    public static Command Build()
    {
        var session = new SessionFlags(adapterRequired: true, tokenizer: false, dtypeDefault: "auto");
        session.Dtype.Description = "Dtype to load the base in: auto (the checkpoint's; fp32 for builtin:tiny), fp32, bf16. The merge is " +
                                    "computed in fp32 and each tensor is written in its source dtype.";
        var output = new Option<DirectoryInfo>("--out") { Description = "Output folder for the merged checkpoint", Required = true };
        var shard = new Option<long>("--max-shard-bytes")
        {
            Description = "Largest shard in bytes (Hugging Face's default 5e9)",
            DefaultValueFactory = _ => MergedModelExport.DefaultMaxShardBytes,
        };
        var overwrite = new Option<bool>("--overwrite") { Description = "Replace an existing non-empty --out folder (never the --model folder)" };
        var cmd = new Command("merge", "Merge a LoRA adapter into its base model and write a full checkpoint") { output, shard, overwrite };
        session.AddTo(cmd);
        cmd.SetAction(pr => CliErrors.Run("merge", pr.InvocationConfiguration.Error, () =>
        {
            var outDir = pr.GetValue(output)!.FullName;
            var model = pr.GetValue(session.Model)!;
            // Before loading anything: a refused --out should not cost a model load.
            MergedModelExport.CheckOutput(model == Session.BuiltinTiny ? null : model, outDir, pr.GetValue(overwrite));
            var dtype = pr.GetValue(session.Dtype)!;
            var precision = dtype.Equals("auto", StringComparison.OrdinalIgnoreCase)
                ? AutoPrecision(Session.Open(session.Read(pr, Precision.Fp32)))
                : OptionNames.Parse<Precision>(dtype, "--dtype");
            return Run(session.Read(pr, precision), outDir, pr.GetValue(shard), pr.GetValue(overwrite),
                pr.InvocationConfiguration.Output, pr.InvocationConfiguration.Error);
        }));
        return cmd;
    }

    /// <summary>Loads the base on the CPU with its adapter, merges, and writes the checkpoint: in the source's own key
    /// layout with its other files copied for a model folder, or the published layout plus config.json for
    /// builtin:tiny. Returns the exit code.</summary>
    public static int Run(SessionOptions options, string outDir, long maxShardBytes, bool overwrite, TextWriter stdout, TextWriter stderr)
    {
        using var log = CliLog.For("merge", stderr);
        var session = Session.Open(options with { Device = "cpu" });
        using var model = session.LoadModel(log);
        var adapters = Qwen35.Lora.LoraInjector.Adapters(model).Count;
        var written = session.ModelDir is { } source
            ? MergedModelExport.Export(model, source, outDir, maxShardBytes, overwrite)
            : MergedModelExport.ExportWithoutSource(model, model.Config.ToJson(), outDir, maxShardBytes, overwrite);
        stdout.WriteLine($"merged {adapters} adapters from {session.AdapterDir} into {outDir}");
        foreach (var f in written) stdout.WriteLine(f);
        return CliErrors.Ok;
    }

    /// <summary>"auto": the dtype most text tensors of the checkpoint use (fp32 for builtin:tiny).</summary>
    static Precision AutoPrecision(Session session)
    {
        if (session.ModelDir is null) return Precision.Fp32;
        using var plan = CheckpointPlan.Open(session.ModelDir);
        var dtype = plan.Mapping.Values.GroupBy(n => plan.Checkpoint.Info(n).Dtype).OrderByDescending(g => g.Count()).First().Key;
        // The model supports fp32 and bf16 only; an fp16 checkpoint is loaded (and merged) in fp32.
        return dtype == "BF16" ? Precision.Bf16 : Precision.Fp32;
    }
}
