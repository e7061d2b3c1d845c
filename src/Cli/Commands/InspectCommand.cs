using System.CommandLine;
using Qwen35.Lora;
using Qwen35.Models;
using Qwen35.Models.Config;
using Qwen35.Models.SafeTensors;

namespace Qwen35.Cli.Commands;

/// <summary>
/// `trainer inspect --model DIR` and/or `--adapter DIR`: describes a checkpoint (config, tensor counts) and an adapter
/// (targets, ranks, scaling, parameter counts, portability warnings); with both, also checks the adapter fits the model.
/// Reads headers only: no weights are loaded into a model.
/// </summary>
public static class InspectCommand
{
    public static Command Build()
    {
        var model = new Option<DirectoryInfo?>("--model") { Description = "Model folder (config.json + safetensors)" };
        var adapter = new Option<DirectoryInfo?>("--adapter") { Description = "PEFT LoRA adapter folder" };
        var cmd = new Command("inspect", "Describe a model checkpoint and/or a LoRA adapter") { model, adapter };
        cmd.SetAction(pr =>
        {
            var modelDir = pr.GetValue(model)?.FullName;
            var adapterDir = pr.GetValue(adapter)?.FullName;
            if (modelDir == null && adapterDir == null)
            {
                Console.Error.WriteLine("error: give --model DIR and/or --adapter DIR");
                return 1;
            }
            return CliRun.Guard(() => Run(modelDir, adapterDir));
        });
        return cmd;
    }

    static int Run(string? modelDir, string? adapterDir)
    {
        Qwen35TextConfig? config = null;
        if (modelDir != null)
        {
            config = Qwen35TextConfig.Load(Path.Combine(modelDir, "config.json"));
            using var ck = SafeTensorsCheckpoint.Open(modelDir);
            Console.WriteLine($"model: {modelDir}");
            Console.WriteLine($"  {config.Summary()}");
            Console.WriteLine($"  layer types: {string.Join(",", config.LayerTypes.Select(t => t == Qwen35TextConfig.FullAttention ? "F" : "L"))}");
            Console.WriteLine($"  text parameters: {ParameterManifest.TotalParameters(config):N0}");
            var byPrefix = ck.Names.GroupBy(n => Qwen35ForCausalLM.SkippedPrefixes.FirstOrDefault(p => n.StartsWith(p, StringComparison.Ordinal)) ?? "text")
                .OrderBy(g => g.Key, StringComparer.Ordinal);
            Console.WriteLine($"  checkpoint tensors: {string.Join(", ", byPrefix.Select(g => $"{g.Key} {g.Count()}"))}; " +
                              $"dtypes {string.Join(", ", ck.Names.GroupBy(n => ck.Info(n).Dtype).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => $"{g.Key} {g.Count()}"))}");
        }
        if (adapterDir == null) return 0;

        using var file = PeftAdapter.Load(adapterDir);
        var o = file.Options;
        var report = AdapterInspection.Describe(file, config);
        Console.WriteLine($"adapter: {adapterDir}");
        Console.WriteLine($"  base_model_name_or_path: {file.BaseModelNameOrPath ?? "(none)"}");
        Console.WriteLine($"  target_modules: {o.TargetModules}{(o.LayersToTransform is { } l ? $", layers_to_transform [{string.Join(",", l)}]" : "")}");
        Console.WriteLine($"  r {o.Rank}, lora_alpha {o.Alpha}, use_rslora {(o.UseRsLora ? "true" : "false")}, lora_dropout {o.Dropout}" +
                          (o.RankPattern.Count > 0 ? $", rank_pattern {{{string.Join(", ", o.RankPattern.Select(p => $"{p.Key}: {p.Value}"))}}}" : "") +
                          (o.AlphaPattern.Count > 0 ? $", alpha_pattern {{{string.Join(", ", o.AlphaPattern.Select(p => $"{p.Key}: {p.Value}"))}}}" : ""));
        foreach (var line in report.Format().Split('\n')) Console.WriteLine("  " + line);
        var warnings = AdapterPortability.Check(o, file.Modules.Select(m => (m.ModuleName, m.Rank)));
        foreach (var w in warnings) Console.WriteLine($"  portability warning: {w}");
        if (config == null) return 0;
        var problems = AdapterInspection.CheckAgainst(file, config);
        foreach (var p in problems) Console.WriteLine($"  does not fit the model: {p}");
        if (problems.Count == 0) Console.WriteLine("  fits the model: yes");
        return problems.Count == 0 ? 0 : 2;
    }
}
