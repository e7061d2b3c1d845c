using System.Text.Json;
using System.Text.Json.Nodes;

namespace Qwen35.Models.Config;

/// <summary>
/// Turns a Hugging Face config.json object into a <see cref="Qwen35TextConfig"/>, following HF's precedence rules
/// (docs/model.md, "Choices against the sharp edges", item 20): wrapper layout reads <c>text_config</c> but the
/// top-level <c>tie_word_embeddings</c> (HF ties from the outer config); <c>layer_types</c> wins over
/// <c>full_attention_interval</c>; <c>rope_parameters</c> wins over legacy <c>rope_theta</c> /
/// <c>partial_rotary_factor</c> / <c>rope_scaling</c>. Anything we cannot build is an error naming file and field.
/// </summary>
sealed class ConfigReader(JsonObject root, string source)
{
    // Fields whose presence means a mixture-of-experts or otherwise different architecture.
    static readonly string[] MoeKeys = ["num_experts", "num_experts_per_tok", "moe_intermediate_size", "shared_expert_intermediate_size"];

    // Keys that fix the tensor shapes and must be present. HF's Qwen3_5TextConfig defaults them to the 9B's numbers
    // (hidden 4096, 32 layers, 16/4 heads, 32 value heads, …), which no small or custom model shares: taking those
    // defaults turned a config without hidden_size into a 9B skeleton that failed later with dozens of shape
    // mismatches. vocab_size, head_dim and the GDN head count/dims are the same for every published size, but they too
    // fix shapes, and a custom model that leaves them out is far more likely broken than a 248320-token 256-dim model.
    // Everything else keeps HF's default: either every published size shares it (conv kernel 4, full attention every
    // 4th layer, eps 1e-6, partial rotary 0.25, …) or it fixes no shape (max_position_embeddings, initializer_range).
    static readonly string[] RequiredKeys =
    [
        "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
        "head_dim", "linear_num_key_heads", "linear_num_value_heads", "linear_key_head_dim", "linear_value_head_dim",
    ];

    JsonObject text = null!;
    string prefix = "";

    public Qwen35TextConfig Read()
    {
        text = root;
        var modelType = OptString(root, "model_type");
        if (root["text_config"] is JsonObject nested)
        {
            text = nested;
            prefix = "text_config.";
        }
        else if (root.ContainsKey("text_config") && root["text_config"] is not null)
            throw Error("text_config", "must be a JSON object");
        else if (modelType is not null && modelType != "qwen3_5_text" && modelType != "qwen3_5")
            throw Error("model_type", $"'{modelType}' is not a Qwen3.5 dense text model (expected qwen3_5 or qwen3_5_text)");

        var textType = OptString(text, "model_type");
        if (prefix != "" && textType is not null && textType != "qwen3_5_text")
            throw Error("model_type", $"'{textType}' is not qwen3_5_text");

        foreach (var key in MoeKeys)
            if (text[key] is JsonNode n && n.GetValueKind() == JsonValueKind.Number && n.GetValue<double>() > 0)
                throw Error(key, $"= {n.ToJsonString()}: mixture-of-experts models are not supported (dense Qwen3.5 only)");

        var act = OptString(text, "hidden_act") ?? "silu";
        if (act != "silu") throw Error("hidden_act", $"'{act}' is not supported (only silu)");
        if (OptBool(text, "attention_bias") == true) throw Error("attention_bias", "true is not supported (Qwen3.5 has no biases)");

        var missing = RequiredKeys.Where(k => text[k] is null).Select(k => prefix + k).ToList();
        if (missing.Count == 1)
            throw new ConfigException($"{source}: {missing[0]} is missing; it is required (it fixes the tensor shapes and has no default that fits every model size)");
        if (missing.Count > 1)
            throw new ConfigException($"{source}: {string.Join(", ", missing)} are missing; they are required (they fix the tensor shapes and have no default that fits every model size)");

        var hidden = Int("hidden_size");
        var layers = Int("num_hidden_layers");
        var heads = Int("num_attention_heads");
        var kvHeads = Int("num_key_value_heads");
        var headDim = Int("head_dim");
        var lkHeads = Int("linear_num_key_heads");
        var lvHeads = Int("linear_num_value_heads");
        if (heads % kvHeads != 0)
            throw Error("num_attention_heads", $"{heads} is not divisible by num_key_value_heads {kvHeads}");
        if (lvHeads % lkHeads != 0)
            throw Error("linear_num_value_heads", $"{lvHeads} is not divisible by linear_num_key_heads {lkHeads}");

        var (theta, partial, mrope) = ReadRope();
        if ((int)(headDim * partial) % 2 != 0 || (int)(headDim * partial) <= 0)
            throw Error("partial_rotary_factor", $"{partial} x head_dim {headDim} must give a positive even rotary dim");

        return new Qwen35TextConfig
        {
            VocabSize = Int("vocab_size"),
            HiddenSize = hidden,
            IntermediateSize = Int("intermediate_size"),
            NumHiddenLayers = layers,
            NumAttentionHeads = heads,
            NumKeyValueHeads = kvHeads,
            HeadDim = headDim,
            LinearNumKeyHeads = lkHeads,
            LinearNumValueHeads = lvHeads,
            LinearKeyHeadDim = Int("linear_key_head_dim"),
            LinearValueHeadDim = Int("linear_value_head_dim"),
            LinearConvKernelDim = Int("linear_conv_kernel_dim", 4),
            LayerTypes = ReadLayerTypes(layers),
            RmsNormEps = Double(text, "rms_norm_eps") ?? 1e-6,
            RopeTheta = theta,
            PartialRotaryFactor = partial,
            MropeSection = mrope,
            // HF's ForConditionalGeneration ties from the top-level flag; a flat config has only one.
            TieWordEmbeddings = OptBool(root, "tie_word_embeddings") ?? OptBool(text, "tie_word_embeddings") ?? false,
            EosTokenIds = ReadEos(),
            MaxPositionEmbeddings = Int("max_position_embeddings", 32768),
            InitializerRange = Double(text, "initializer_range") ?? 0.02,
        };
    }

    IReadOnlyList<string> ReadLayerTypes(int layers)
    {
        if (text["layer_types"] is JsonArray arr)
        {
            if (arr.Count != layers)
                throw Error("layer_types", $"has {arr.Count} entries but num_hidden_layers is {layers}");
            var list = new List<string>();
            for (var i = 0; i < arr.Count; i++)
            {
                var t = arr[i]?.GetValueKind() == JsonValueKind.String ? arr[i]!.GetValue<string>() : null;
                if (t != Qwen35TextConfig.LinearAttention && t != Qwen35TextConfig.FullAttention)
                    throw Error($"layer_types[{i}]", $"unknown layer type {arr[i]?.ToJsonString() ?? "null"} (expected {Qwen35TextConfig.LinearAttention} or {Qwen35TextConfig.FullAttention})");
                list.Add(t);
            }
            return list;
        }
        if (text.ContainsKey("layer_types") && text["layer_types"] is not null)
            throw Error("layer_types", "must be a list of strings");
        var interval = Int("full_attention_interval", 4);
        if (interval <= 0) throw Error("full_attention_interval", $"{interval} must be positive");
        return Enumerable.Range(0, layers)
            .Select(i => (i + 1) % interval == 0 ? Qwen35TextConfig.FullAttention : Qwen35TextConfig.LinearAttention)
            .ToList();
    }

    (double Theta, double Partial, IReadOnlyList<int> Mrope) ReadRope()
    {
        // Newer writers: rope_parameters{rope_type, rope_theta, partial_rotary_factor, mrope_section}. Older ones put
        // rope_theta / partial_rotary_factor at the top of the text config and mrope keys in rope_scaling.
        var rp = text["rope_parameters"] as JsonObject;
        var legacy = text["rope_scaling"] as JsonObject;
        var ropeType = (rp != null ? OptString(rp, "rope_type") : null)
                       ?? (legacy != null ? OptString(legacy, "rope_type") ?? OptString(legacy, "type") : null)
                       ?? "default";
        if (ropeType != "default")
            throw Error(rp != null ? "rope_parameters.rope_type" : "rope_scaling.rope_type",
                $"'{ropeType}' is not supported (only default RoPE)");
        var theta = (rp != null ? Double(rp, "rope_theta") : null) ?? Double(text, "rope_theta")
                    ?? throw Error("rope_parameters.rope_theta", "missing (neither rope_parameters.rope_theta nor rope_theta is set)");
        var partial = (rp != null ? Double(rp, "partial_rotary_factor") : null) ?? Double(text, "partial_rotary_factor") ?? 0.25;
        var mropeNode = rp?["mrope_section"] ?? legacy?["mrope_section"];
        IReadOnlyList<int> mrope = mropeNode is JsonArray a
            ? a.Select((n, i) => n?.GetValueKind() == JsonValueKind.Number ? n.GetValue<int>()
                : throw Error($"rope_parameters.mrope_section[{i}]", "must be an integer")).ToList()
            : [11, 11, 10];
        return (theta, partial, mrope);
    }

    IReadOnlyList<int> ReadEos()
    {
        var node = text["eos_token_id"] ?? root["eos_token_id"];
        return node switch
        {
            null => [],
            JsonArray arr => arr.Select((n, i) => n?.GetValueKind() == JsonValueKind.Number ? n.GetValue<int>()
                : throw Error($"eos_token_id[{i}]", "must be an integer")).ToList(),
            _ when node.GetValueKind() == JsonValueKind.Number => [node.GetValue<int>()],
            _ => throw Error("eos_token_id", "must be an integer or a list of integers"),
        };
    }

    /// <summary>A positive integer field; <paramref name="defaultValue"/> null means required (checked up front).</summary>
    int Int(string field, int? defaultValue = null)
    {
        var node = text[field];
        if (node is null) return defaultValue ?? throw Error(field, "is missing");
        if (node.GetValueKind() != JsonValueKind.Number || !node.AsValue().TryGetValue<int>(out var v))
            throw Error(field, $"must be an integer, got {node.ToJsonString()}");
        if (v <= 0 && field != "full_attention_interval") throw Error(field, $"must be positive, got {v}");
        return v;
    }

    double? Double(JsonObject o, string field)
    {
        var node = o[field];
        if (node is null) return null;
        if (node.GetValueKind() != JsonValueKind.Number) throw Error(field, $"must be a number, got {node.ToJsonString()}");
        return node.GetValue<double>();
    }

    bool? OptBool(JsonObject o, string field)
    {
        var node = o[field];
        if (node is null) return null;
        return node.GetValueKind() switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Error(field, $"must be true or false, got {node.ToJsonString()}"),
        };
    }

    string? OptString(JsonObject o, string field)
    {
        var node = o[field];
        if (node is null) return null;
        if (node.GetValueKind() != JsonValueKind.String) throw Error(field, $"must be a string, got {node.ToJsonString()}");
        return node.GetValue<string>();
    }

    ConfigException Error(string field, string what) => new($"{source}: {prefix}{field} {what}");
}
