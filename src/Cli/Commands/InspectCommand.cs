using System.CommandLine;
using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Qwen35.Lora;
using Qwen35.Models;
using Qwen35.Models.Config;
using Qwen35.Training;

namespace Qwen35.Cli.Commands;

/// <summary>
/// <c>trainer inspect --model DIR</c> and/or <c>--adapter DIR</c>: what a Qwen3.5 folder holds and how it would load
/// (config summary, layer pattern, parameter counts by module type, checkpoint dtypes, skipped keys, key mismatches)
/// and what a PEFT LoRA adapter holds (targets, ranks, scaling, counts, portability warnings); with both, whether the
/// adapter fits the model. Reads config files and safetensors headers only, so it is instant even for 27B.
/// Stdout: a short human summary, or with --json one JSON object (sections "model" and "adapter").
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
        var model = new Option<string?>("--model") { Description = $"Hugging Face Qwen3.5 folder (config.json + safetensors) or {Session.BuiltinTiny}" };
        var adapter = new Option<DirectoryInfo?>("--adapter") { Description = "PEFT LoRA adapter folder" };
        var json = new Option<bool>("--json") { Description = "Print the full description as one JSON object instead of the summary" };
        var cmd = new Command("inspect", "Describe a model folder (config, layer pattern, parameter counts, dtypes, skipped keys) " +
                                         "and/or a LoRA adapter (targets, ranks, fit)") { model, adapter, json };
        cmd.SetAction(pr =>
        {
            var modelDir = pr.GetValue(model);
            var adapterDir = pr.GetValue(adapter)?.FullName;
            var stderr = pr.InvocationConfiguration.Error;
            if (modelDir == null && adapterDir == null)
            {
                stderr.WriteLine("inspect: error: give --model DIR and/or --adapter DIR");
                return 1;
            }
            return Run(modelDir, adapterDir, pr.GetValue(json), pr.InvocationConfiguration.Output, stderr);
        });
        return cmd;
    }

    /// <summary>The verb's body; returns the exit code: 0 ok (a model whose checkpoint does not match its config is
    /// reported in "model.checkpoint.problem"), 2 unreadable input, an adapter that does not fit the model or whose
    /// target_modules disagree with its tensors, 3 runtime failure.</summary>
    public static int Run(string? modelDir, string? adapterDir, bool json, TextWriter stdout, TextWriter stderr)
    {
        return CliErrors.Run("inspect", stderr, () =>
        {
            var result = new JsonObject();
            Qwen35TextConfig? config = null;
            if (modelDir != null)
            {
                // The session resolves the name (a folder, or builtin:tiny, which has a config but no checkpoint).
                var session = Session.Open(new SessionOptions { Model = modelDir });
                config = session.Config;
                modelDir = session.ModelDir;
                if (modelDir is null) result["model"] = DescribeModel(Session.BuiltinTiny, config, null);
                else
                {
                    using var plan = CheckpointPlan.Open(modelDir);
                    result["model"] = DescribeModel(modelDir, plan.Config, plan);
                    if (plan.Problem is not null) stderr.WriteLine($"inspect: warning: {plan.Problem}");
                }
            }
            string? adapterError = null;
            if (adapterDir != null)
            {
                var (section, error) = DescribeAdapter(adapterDir, modelDir, config);
                result["adapter"] = section;
                adapterError = error;
            }
            stdout.Write(json ? result.ToJsonString(Indented) + "\n" : Summary(result));
            if (adapterError is null) return CliErrors.Ok;
            stderr.WriteLine($"inspect: error: {adapterError}");
            return CliErrors.BadInput;
        });
    }

    /// <summary>The "model" section; <paramref name="plan"/> is null for a model without a checkpoint (builtin:tiny),
    /// whose "checkpoint" is then null.</summary>
    static JsonObject DescribeModel(string modelDir, Qwen35TextConfig config, CheckpointPlan? plan)
    {
        var manifest = ParameterManifest.For(config);
        var byType = new SortedDictionary<string, long>(StringComparer.Ordinal);
        foreach (var e in manifest) byType[ModuleType(e.Name)] = byType.GetValueOrDefault(ModuleType(e.Name)) + e.Count;
        var dtypes = new SortedDictionary<string, int>(StringComparer.Ordinal);
        foreach (var source in plan?.Mapping.Values ?? [])
        {
            var d = plan!.Checkpoint.Info(source).Dtype;
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
            ["checkpoint"] = plan is null ? null : new JsonObject
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

    /// <summary>The "adapter" section: config, per-module table, parameter counts, portability warnings, whether the
    /// targets agree with the tensors and (with a model) the fit check. Error (one line, for stderr) is null when the
    /// adapter is consistent and fits.</summary>
    static (JsonObject Section, string? Error) DescribeAdapter(string adapterDir, string? modelDir, Qwen35TextConfig? config)
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
        // Loaders follow the tensors, but PEFT attaches where target_modules points: a disagreement means the adapter
        // is not what its config says (the issue's adapter named foo_proj over q_proj tensors and "fitted").
        var targetProblems = AdapterInspection.CheckTargets(file, config);
        adapter["target_problems"] = new JsonArray(targetProblems.Select(p => (JsonNode?)p).ToArray());
        if (config is null)
            return (adapter, targetProblems.Count == 0 ? null
                : $"{adapterDir}: target_modules in {PeftAdapterConfig.FileName} disagree with the adapter's tensors ({Count(targetProblems.Count, "problem")}, listed on stdout)");
        var problems = AdapterInspection.CheckAgainst(file, config);
        var fits = problems.Count == 0 && targetProblems.Count == 0;
        adapter["fits_model"] = fits;
        adapter["fit_problems"] = new JsonArray(problems.Select(p => (JsonNode?)p).ToArray());
        return (adapter, fits ? null
            : $"{adapterDir}: the adapter does not fit the model {modelDir} ({Count(problems.Count + targetProblems.Count, "problem")}, listed on stdout)");
    }

    static string Count(int n, string noun) => n == 1 ? $"1 {noun}" : $"{n} {noun}s";

    /// <summary>
    /// The default output: a few lines per section, everything taken from the JSON that --json prints (so the two
    /// cannot disagree). Model: path, config summary line, layer pattern, parameters, checkpoint, dtypes, skipped keys,
    /// problem. Adapter: path, base model, targets, ranks and scaling, parameters, warnings, and whether the targets
    /// agree with the tensors (without a model) or whether it fits the model (with one), with the problems listed.
    /// </summary>
    static string Summary(JsonObject result)
    {
        var ci = CultureInfo.InvariantCulture;
        var sb = new System.Text.StringBuilder();
        void Line(string text) => sb.Append(text).Append('\n');
        static IEnumerable<(string Key, JsonNode? Value)> Props(JsonNode? o) => o!.AsObject().Select(kv => (kv.Key, kv.Value));
        // The JSON holds longs, ints and doubles alike; its text is the one form they share.
        string Num(JsonNode? n) => double.Parse(n!.ToJsonString(), ci).ToString("#,0.######", ci);

        if (result["model"] is JsonObject m)
        {
            var pattern = m["layer_pattern"]!.GetValue<string>();
            var p = m["parameters"]!;
            var c = m["checkpoint"];
            Line($"model: {m["path"]}");
            Line($"  config: {m["summary"]}");
            Line($"  layers: {pattern} ({pattern.Count(x => x == 'L')} linear, {pattern.Count(x => x == 'F')} full)");
            Line($"  parameters: {Num(p["total"])} in {p["tensors"]} tensors (" +
                 string.Join(", ", Props(p["by_module_type"]).Select(kv => $"{kv.Key} {Num(kv.Value)}")) + ")");
            if (c is null) Line("  checkpoint: none (built in: weights are drawn from a seed when a verb loads it)");
            else
            {
                var files = c["files"]!.GetValue<int>();
                Line($"  checkpoint: {Count(files, "file")}, {c["layout"]} layout, {c["tensors"]} tensors ({c["text_tensors"]} text)");
                Line($"  dtypes: {string.Join(", ", Props(c["dtypes"]).Select(kv => $"{kv.Key} {kv.Value}"))}");
                var skipped = Props(c["skipped"]).OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key} {kv.Value}").ToList();
                Line($"  skipped: {(skipped.Count == 0 ? "none" : string.Join(", ", skipped))}");
                Line($"  problem: {c["problem"]?.GetValue<string>() ?? "none"}");
            }
        }
        if (result["adapter"] is JsonObject a)
        {
            Line($"adapter: {a["path"]}");
            if (a["base_model_name_or_path"] is { } baseModel) Line($"  base model: {baseModel}");
            var targets = a["target_modules"] is JsonArray list
                ? string.Join(", ", list.Select(t => t!.GetValue<string>()))
                : $"regex \"{a["target_modules"]}\"";
            var layers = a["layers_to_transform"] is JsonArray l ? "; layers " + string.Join(", ", l.Select(x => x!.ToJsonString())) : "";
            Line($"  targets: {targets}{layers}");
            Line($"  modules: {a["modules"]}, rank {string.Join("/", a["ranks"]!.AsArray().Select(Num))}, lora_alpha {Num(a["lora_alpha"])}, " +
                 $"scaling {string.Join("/", a["scalings"]!.AsArray().Select(Num))}{(a["use_rslora"]!.GetValue<bool>() ? " (rsLoRA)" : "")}");
            var count = a["parameters"]!["adapter"]!.GetValue<long>();
            double? share = a["parameters"]!["share_of_total"] is { } sh ? double.Parse(sh.ToJsonString(), ci) : null;
            Line(share is { } s
                ? string.Create(ci, $"  parameters: {count:N0} ({s * 100:0.####}% of {Math.Round(count / s):N0} with the model)")
                : string.Create(ci, $"  parameters: {count:N0}"));
            foreach (var w in a["portability_warnings"]!.AsArray()) Line($"  warning: {w}");
            var targetProblems = a["target_problems"]!.AsArray().Select(x => x!.GetValue<string>()).ToList();
            List<string> problems;
            if (a["fits_model"] is { } fits)
            {
                problems = [.. targetProblems, .. a["fit_problems"]!.AsArray().Select(x => x!.GetValue<string>())];
                Line(fits.GetValue<bool>() ? "  fits the model: yes" : $"  fits the model: no ({Count(problems.Count, "problem")})");
            }
            else
            {
                problems = targetProblems;
                Line(problems.Count == 0 ? "  targets agree with the tensors: yes" : $"  targets agree with the tensors: no ({Count(problems.Count, "problem")})");
            }
            foreach (var p in problems) Line($"    - {p}");
        }
        return sb.ToString();
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
