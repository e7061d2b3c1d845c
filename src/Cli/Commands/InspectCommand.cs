using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using Qwen35.Models;

namespace Qwen35.Cli.Commands;

/// <summary>
/// <c>trainer inspect --model DIR</c>: what a Qwen3.5 folder holds and how it would load — config summary, layer
/// pattern, parameter counts by module type, checkpoint dtypes, skipped keys and any key mismatch — from config.json
/// and the safetensors headers only (no weights are read, so it is instant even for 27B). JSON on stdout.
/// </summary>
public static class InspectCommand
{
    public static Command Build()
    {
        var model = new Option<DirectoryInfo>("--model") { Description = "Hugging Face Qwen3.5 folder (config.json + safetensors)", Required = true };
        var cmd = new Command("inspect", "Summarise a model folder: config, layer pattern, parameter counts, dtypes, skipped keys.") { model };
        cmd.SetAction(pr => Run(pr.GetValue(model)!.FullName, pr.InvocationConfiguration.Output, pr.InvocationConfiguration.Error));
        return cmd;
    }

    /// <summary>The verb's body; returns the exit code (0 ok, also when the checkpoint does not match the config: the
    /// mismatch is reported in "checkpoint.problem"; 2 unreadable input; 3 runtime failure).</summary>
    public static int Run(string modelDir, TextWriter stdout, TextWriter stderr)
    {
        try
        {
            using var plan = CheckpointPlan.Open(modelDir);
            var config = plan.Config;
            var manifest = ParameterManifest.For(config);
            var byType = new SortedDictionary<string, long>(StringComparer.Ordinal);
            foreach (var e in manifest) byType[ModuleType(e.Name)] = byType.GetValueOrDefault(ModuleType(e.Name)) + e.Count;
            var dtypes = new SortedDictionary<string, int>(StringComparer.Ordinal);
            foreach (var source in plan.Mapping.Values)
            {
                var d = plan.Checkpoint.Info(source).Dtype;
                dtypes[d] = dtypes.GetValueOrDefault(d) + 1;
            }
            var fp32Kept = manifest.Where(e => e.KeptFp32).Select(e => e.Name[(e.Name.LastIndexOf(".linear_attn.", StringComparison.Ordinal) + 1)..])
                .Distinct().Order(StringComparer.Ordinal).ToArray();

            var result = new JsonObject
            {
                ["model"] = modelDir,
                ["summary"] = config.Summary(),
                ["config"] = JsonNode.Parse(config.ToJson()),
                ["layer_pattern"] = string.Concat(config.LayerTypes.Select(t => t == "full_attention" ? 'F' : 'L')),
                ["parameters"] = new JsonObject
                {
                    ["total"] = manifest.Sum(e => e.Count),
                    ["tensors"] = manifest.Count,
                    ["by_module_type"] = new JsonObject(byType.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
                    ["kept_fp32"] = new JsonArray(fp32Kept.Select(n => (JsonNode?)n).ToArray()),
                },
                ["checkpoint"] = new JsonObject
                {
                    ["source"] = plan.Checkpoint.Source,
                    ["files"] = plan.Checkpoint.Files.Count,
                    ["layout"] = plan.Layout,
                    ["tensors"] = plan.Checkpoint.Names.Count,
                    ["text_tensors"] = plan.Mapping.Count,
                    ["dtypes"] = new JsonObject(dtypes.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
                    ["skipped"] = new JsonObject(plan.Skipped.Select(kv => KeyValuePair.Create(kv.Key + "*", (JsonNode?)kv.Value))),
                    ["tied_embeddings"] = config.TieWordEmbeddings,
                    ["problem"] = plan.Problem,
                },
            };
            if (plan.Problem is not null) stderr.WriteLine($"inspect: warning: {plan.Problem}");
            stdout.WriteLine(result.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            return 0;
        }
        catch (Exception e) when (CliParsing.IsBadInput(e))
        {
            stderr.WriteLine($"inspect: error: {e.Message}");
            return 2;
        }
        catch (Exception e)
        {
            stderr.WriteLine($"inspect: failed: {e}");
            return 3;
        }
    }

    /// <summary>Groups a parameter name by the module kind that owns it.</summary>
    static string ModuleType(string name) =>
        name.Contains(".embed_tokens.") ? "embed_tokens"
        : name.StartsWith("lm_head.", StringComparison.Ordinal) ? "lm_head"
        : name.Contains(".linear_attn.") ? "linear_attn (Gated DeltaNet)"
        : name.Contains(".self_attn.") ? "self_attn (gated attention)"
        : name.Contains(".mlp.") ? "mlp"
        : "norms";
}
