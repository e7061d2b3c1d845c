using System.Text.Json;
using System.Text.Json.Nodes;

namespace Qwen35.Lora;

/// <summary>
/// PEFT's <c>adapter_config.json</c> for LoRA: written with PEFT's field set (the 25 fields PEFT's LoraConfig
/// serialises for a plain LoRA adapter), sorted keys and indent 2; read with checks that reject the options this
/// trainer cannot reproduce (DoRA, biases, modules_to_save, …), naming the file and field.
/// </summary>
public static class PeftAdapterConfig
{
    public const string FileName = "adapter_config.json";

    /// <summary>The adapter_config.json text for <paramref name="options"/>, exactly as PEFT would write it.</summary>
    /// <param name="targetNames">For "all-linear", the projection names it expanded to (PEFT saves the expansion).</param>
    public static string ToJson(LoraOptions options, string? baseModelNameOrPath, IEnumerable<string> targetNames)
    {
        JsonNode targets = options.TargetModules.Regex != null
            ? JsonValue.Create(options.TargetModules.Regex)
            : new JsonArray((options.TargetModules.NameList ?? targetNames).Distinct().Order(StringComparer.Ordinal)
                .Select(n => (JsonNode?)JsonValue.Create(n)).ToArray());
        var config = new JsonObject
        {
            ["alpha_pattern"] = new JsonObject(options.AlphaPattern.Select(p => KeyValuePair.Create(p.Key, (JsonNode?)Number(p.Value)))),
            ["auto_mapping"] = null,
            ["base_model_name_or_path"] = baseModelNameOrPath,
            ["bias"] = "none",
            ["fan_in_fan_out"] = false,
            ["inference_mode"] = true,
            ["init_lora_weights"] = options.InitLoraWeights == LoraInit.Gaussian ? JsonValue.Create("gaussian") : JsonValue.Create(true),
            ["layer_replication"] = null,
            ["layers_pattern"] = null,
            ["layers_to_transform"] = options.LayersToTransform == null
                ? null
                : new JsonArray(options.LayersToTransform.Order().Select(l => (JsonNode?)JsonValue.Create(l)).ToArray()),
            ["loftq_config"] = new JsonObject(),
            ["lora_alpha"] = Number(options.Alpha),
            ["lora_bias"] = false,
            ["lora_dropout"] = JsonValue.Create(options.Dropout),
            ["megatron_config"] = null,
            ["megatron_core"] = "megatron.core",
            ["modules_to_save"] = null,
            ["peft_type"] = "LORA",
            ["r"] = options.Rank,
            ["rank_pattern"] = new JsonObject(options.RankPattern.Select(p => KeyValuePair.Create(p.Key, (JsonNode?)JsonValue.Create(p.Value)))),
            ["revision"] = null,
            ["target_modules"] = targets,
            ["task_type"] = "CAUSAL_LM",
            ["use_dora"] = false,
            ["use_rslora"] = options.UseRsLora,
        };
        return PythonJson.Dumps(config, indent: 2, sortKeys: true);
    }

    // PEFT users write integer alphas; keep them integers in the file (llama.cpp and vLLM read them as numbers anyway).
    static JsonNode Number(double v) =>
        v == Math.Floor(v) && Math.Abs(v) < 1e15 ? JsonValue.Create((long)v) : JsonValue.Create(v);

    /// <summary>
    /// Reads a PEFT LoRA adapter_config.json into <see cref="LoraOptions"/>. Unsupported options (use_dora, bias,
    /// modules_to_save, lora_bias, fan_in_fan_out, layer_replication, base-mutating inits, …) are errors naming the
    /// field. When target_modules is null, <paramref name="fallbackTargets"/> (the names in the weights file) is used.
    /// </summary>
    public static (LoraOptions Options, string? BaseModelNameOrPath) Parse(string json, string path, IEnumerable<string> fallbackTargets)
    {
        JsonObject root;
        try
        {
            root = JsonNode.Parse(json) as JsonObject ?? throw new AdapterFormatException($"{path}: the top level is not a JSON object");
        }
        catch (JsonException e) { throw new AdapterFormatException($"{path}: invalid JSON: {e.Message}", e); }

        string Where(string field) => $"{path}: field \"{field}\"";
        JsonNode? Field(string name) => root.TryGetPropertyValue(name, out var v) ? v : null;
        T Get<T>(string name, T fallback)
        {
            var node = Field(name);
            if (node == null) return fallback;
            try { return node.GetValue<T>(); }
            catch (Exception e) when (e is InvalidOperationException or FormatException)
            { throw new AdapterFormatException($"{Where(name)} has value {node.ToJsonString()}, expected a {typeof(T).Name}"); }
        }
        double GetNumber(JsonNode node, string where) =>
            node is JsonValue v && v.GetValueKind() == JsonValueKind.Number
                ? v.GetValue<double>()
                : throw new AdapterFormatException($"{where} has value {node.ToJsonString()}, expected a number");
        void Unsupported(string field, string why) =>
            throw new AdapterFormatException($"{Where(field)}: {why}; this trainer supports plain LoRA adapters only");

        var peftType = Get<string?>("peft_type", null);
        if (peftType != "LORA") throw new AdapterFormatException($"{Where("peft_type")} is {(peftType == null ? "missing" : $"\"{peftType}\"")}, expected \"LORA\"");
        if (Get("use_dora", false)) Unsupported("use_dora", "DoRA (use_dora true) adds a magnitude vector");
        var bias = Get<string?>("bias", "none");
        if (bias != "none") Unsupported("bias", $"bias \"{bias}\" trains base biases (Qwen3.5 projections have none)");
        if (Field("modules_to_save") is JsonArray { Count: > 0 } mts) Unsupported("modules_to_save", $"modules_to_save {mts.ToJsonString()} saves full module copies");
        else if (Field("modules_to_save") is { } m && m is not JsonArray) Unsupported("modules_to_save", $"modules_to_save {m.ToJsonString()} saves full module copies");
        if (Get("lora_bias", false)) Unsupported("lora_bias", "lora_bias true adds a bias to lora_B");
        if (Get("fan_in_fan_out", false)) Unsupported("fan_in_fan_out", "fan_in_fan_out true is for GPT-2 Conv1D weights stored [in, out]");
        if (Field("layer_replication") is { } lr) Unsupported("layer_replication", $"layer_replication {lr.ToJsonString()} duplicates layers");
        if (Field("target_parameters") is JsonArray { Count: > 0 } tp) Unsupported("target_parameters", $"target_parameters {tp.ToJsonString()} adapts raw parameters");
        if (Field("trainable_token_indices") is { } tti) Unsupported("trainable_token_indices", $"trainable_token_indices {tti.ToJsonString()} trains embedding rows");
        if (Field("alora_invocation_tokens") is { } ait) Unsupported("alora_invocation_tokens", $"activated LoRA ({ait.ToJsonString()}) changes where the adapter applies");
        if (Get("use_qalora", false)) Unsupported("use_qalora", "QA-LoRA pools the input");

        var init = LoraInit.Default;
        switch (Field("init_lora_weights"))
        {
            case null: break;
            case JsonValue v when v.GetValueKind() is JsonValueKind.True or JsonValueKind.False: break; // false = random B: only matters at init
            case JsonValue v when v.GetValueKind() == JsonValueKind.String && v.GetValue<string>() == "gaussian": init = LoraInit.Gaussian; break;
            case var other:
                Unsupported("init_lora_weights", $"init {other.ToJsonString()} may have changed the base weights (PiSSA/OLoRA/LoftQ/CorDA/EVA …), so the adapter alone does not reproduce the model");
                break;
        }

        var rank = Get("r", 8);
        var alpha = Field("lora_alpha") is { } a ? GetNumber(a, Where("lora_alpha")) : 8;
        var dropout = Field("lora_dropout") is { } d ? GetNumber(d, Where("lora_dropout")) : 0;

        LoraTargets targets = Field("target_modules") switch
        {
            null => LoraTargets.Names(fallbackTargets.Distinct().Order(StringComparer.Ordinal)),
            JsonValue v when v.GetValueKind() == JsonValueKind.String => LoraTargets.FromPeftString(v.GetValue<string>()),
            JsonArray arr => LoraTargets.Names(arr.Select((n, i) => n is JsonValue s && s.GetValueKind() == JsonValueKind.String
                ? s.GetValue<string>()
                : throw new AdapterFormatException($"{Where("target_modules")}[{i}] is {n?.ToJsonString() ?? "null"}, expected a string"))),
            var other => throw new AdapterFormatException($"{Where("target_modules")} is {other.ToJsonString()}, expected a list of names or a regex string"),
        };
        // "all-linear" in a saved file cannot be re-expanded reliably; the weights say what was adapted.
        if (targets.IsAllLinear) targets = LoraTargets.Names(fallbackTargets.Distinct().Order(StringComparer.Ordinal));

        IReadOnlyList<int>? layers = Field("layers_to_transform") switch
        {
            null => null,
            JsonValue v when v.GetValueKind() == JsonValueKind.Number => [v.GetValue<int>()],
            JsonArray arr => arr.Select((n, i) => n is JsonValue x && x.GetValueKind() == JsonValueKind.Number
                ? x.GetValue<int>()
                : throw new AdapterFormatException($"{Where("layers_to_transform")}[{i}] is {n?.ToJsonString() ?? "null"}, expected a layer index")).ToArray(),
            var other => throw new AdapterFormatException($"{Where("layers_to_transform")} is {other.ToJsonString()}, expected a list of layer indices"),
        };
        // PEFT ignores layers_to_transform for a regex target (the regex already names the layers).
        if (targets.Regex != null) layers = null;

        var rankPattern = new Dictionary<string, int>();
        if (Field("rank_pattern") is JsonObject rp)
            foreach (var (k, v) in rp)
            {
                var r = v == null ? double.NaN : GetNumber(v, $"{Where("rank_pattern")}[\"{k}\"]");
                if (r != Math.Floor(r)) throw new AdapterFormatException($"{Where("rank_pattern")}[\"{k}\"] is {v?.ToJsonString()}, expected an integer rank");
                rankPattern[k] = (int)r;
            }
        var alphaPattern = new Dictionary<string, double>();
        if (Field("alpha_pattern") is JsonObject ap)
            foreach (var (k, v) in ap)
                alphaPattern[k] = v == null ? double.NaN : GetNumber(v, $"{Where("alpha_pattern")}[\"{k}\"]");

        var options = new LoraOptions
        {
            Rank = rank, Alpha = alpha, Dropout = dropout, TargetModules = targets, LayersToTransform = layers?.ToList(),
            RankPattern = rankPattern, AlphaPattern = alphaPattern, UseRsLora = Get("use_rslora", false), InitLoraWeights = init,
        };
        if (options.Problems().ToList() is { Count: > 0 } problems)
            throw new AdapterFormatException($"{path}: {string.Join("; ", problems)}");
        return (options, Get<string?>("base_model_name_or_path", null));
    }
}
