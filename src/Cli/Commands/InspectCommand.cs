using System.CommandLine;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Qwen35.Lora;
using Qwen35.Models;
using Qwen35.Models.Config;

namespace Qwen35.Cli.Commands;

/// <summary>
/// <c>trainer inspect --model DIR</c> and/or <c>--adapter DIR</c>: what a Qwen3.5 folder holds and how it would load
/// (config summary, layer pattern, parameter counts by module type, checkpoint dtypes, skipped keys, key mismatches)
/// and what a PEFT LoRA adapter holds (targets, ranks, scaling, counts, portability warnings); with both, whether the
/// adapter fits the model. Reads config files and safetensors headers only, so it is instant even for 27B.
/// One JSON object on stdout (sections "model" and "adapter").
/// </summary>
public static class InspectCommand
{
    static readonly JsonSerializerOptions Indented = new()
    {
        WriteIndented = true,
        // Keep report lines readable (arrows, quotes) instead of \u escapes.
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public static Command Build()
    {
        var model = new Option<DirectoryInfo?>("--model") { Description = "Hugging Face Qwen3.5 folder (config.json + safetensors)" };
        var adapter = new Option<DirectoryInfo?>("--adapter") { Description = "PEFT LoRA adapter folder" };
        var cmd = new Command("inspect", "Describe a model folder (config, layer pattern, parameter counts, dtypes, skipped keys) " +
                                         "and/or a LoRA adapter (targets, ranks, fit)") { model, adapter };
        cmd.SetAction(pr =>
        {
            var modelDir = pr.GetValue(model)?.FullName;
            var adapterDir = pr.GetValue(adapter)?.FullName;
            var stderr = pr.InvocationConfiguration.Error;
            if (modelDir == null && adapterDir == null)
            {
                stderr.WriteLine("inspect: error: give --model DIR and/or --adapter DIR");
                return 1;
            }
            return Run(modelDir, adapterDir, pr.InvocationConfiguration.Output, stderr);
        });
        return cmd;
    }

    /// <summary>The verb's body; returns the exit code: 0 ok (a model whose checkpoint does not match its config is
    /// reported in "model.checkpoint.problem"), 2 unreadable input or an adapter that does not fit, 3 runtime failure.</summary>
    public static int Run(string? modelDir, string? adapterDir, TextWriter stdout, TextWriter stderr)
    {
        return CliErrors.Run("inspect", stderr, () =>
        {
            var result = new JsonObject();
            Qwen35TextConfig? config = null;
            if (modelDir != null)
            {
                using var plan = CheckpointPlan.Open(modelDir);
                config = plan.Config;
                result["model"] = DescribeModel(modelDir, plan);
                if (plan.Problem is not null) stderr.WriteLine($"inspect: warning: {plan.Problem}");
            }
            var code = 0;
            if (adapterDir != null)
            {
                var (section, fits) = DescribeAdapter(adapterDir, config);
                result["adapter"] = section;
                if (!fits) code = 2;
            }
            stdout.WriteLine(result.ToJsonString(Indented));
            return code;
        });
    }

    static JsonObject DescribeModel(string modelDir, CheckpointPlan plan)
    {
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
        var fp32Kept = manifest.Where(e => e.KeptFp32)
            .Select(e => e.Name[(e.Name.LastIndexOf(".linear_attn.", StringComparison.Ordinal) + 1)..])
            .Distinct().Order(StringComparer.Ordinal).ToArray();

        return new JsonObject
        {
            ["path"] = modelDir,
            ["summary"] = config.Summary(),
            ["config"] = JsonNode.Parse(config.ToJson()),
            ["layer_pattern"] = string.Concat(config.LayerTypes.Select(t => t == Qwen35TextConfig.FullAttention ? 'F' : 'L')),
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
    }

    /// <summary>The "adapter" section: config, per-module table, parameter counts, portability warnings and (with a
    /// model) the fit check; Fits is false when an adapter tensor does not fit the model.</summary>
    static (JsonObject Section, bool Fits) DescribeAdapter(string adapterDir, Qwen35TextConfig? config)
    {
        using var file = PeftAdapter.Load(adapterDir);
        var o = file.Options;
        var report = AdapterInspection.Describe(file, config);
        var warnings = AdapterPortability.Check(o, file.Modules.Select(m => (m.ModuleName, m.Rank)));
        static JsonObject Counts(IReadOnlyDictionary<string, long> d) => new(d.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value)));
        var adapter = new JsonObject
        {
            ["path"] = adapterDir,
            ["base_model_name_or_path"] = file.BaseModelNameOrPath,
            ["target_modules"] = o.TargetModules.Regex is { } regex
                ? regex
                : new JsonArray(o.TargetModules.NameList!.Select(n => (JsonNode?)n).ToArray()),
            ["layers_to_transform"] = o.LayersToTransform is { } layers ? new JsonArray(layers.Select(l => (JsonNode?)l).ToArray()) : null,
            ["r"] = o.Rank,
            ["lora_alpha"] = o.Alpha,
            ["use_rslora"] = o.UseRsLora,
            ["lora_dropout"] = o.Dropout,
            ["rank_pattern"] = new JsonObject(o.RankPattern.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
            ["alpha_pattern"] = new JsonObject(o.AlphaPattern.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
            ["modules"] = report.Modules.Count,
            ["ranks"] = new JsonArray(report.Modules.Select(m => m.Rank).Distinct().Order().Select(r => (JsonNode?)r).ToArray()),
            ["scalings"] = new JsonArray(report.Modules.Select(m => m.Scaling).Distinct().Order().Select(x => (JsonNode?)x).ToArray()),
            ["parameters"] = new JsonObject
            {
                ["adapter"] = report.TrainableParameters,
                // Only known with --model: adapter / (model + adapter).
                ["share_of_total"] = report.TotalParameters == 0 ? null : report.TrainableShare,
                ["by_module_type"] = Counts(report.ByModuleType),
                ["by_layer_type"] = Counts(report.ByLayerType),
            },
            ["module_list"] = new JsonArray(report.Modules.Select(m => (JsonNode?)new JsonObject
            {
                ["name"] = m.Name, ["layer"] = m.LayerIndex, ["layer_type"] = m.LayerType, ["r"] = m.Rank, ["lora_alpha"] = m.Alpha,
                ["scaling"] = m.Scaling, ["in_features"] = m.InFeatures, ["out_features"] = m.OutFeatures, ["parameters"] = m.ParameterCount,
            }).ToArray()),
            ["portability_warnings"] = new JsonArray(warnings.Select(w => (JsonNode?)w).ToArray()),
        };
        if (config is null) return (adapter, true);
        var problems = AdapterInspection.CheckAgainst(file, config);
        adapter["fits_model"] = problems.Count == 0;
        adapter["fit_problems"] = new JsonArray(problems.Select(p => (JsonNode?)p).ToArray());
        return (adapter, problems.Count == 0);
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
