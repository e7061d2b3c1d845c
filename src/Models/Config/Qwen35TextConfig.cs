using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Qwen35.Models.Config;

/// <summary>
/// The text-decoder part of a Qwen3.5 dense model config (Hugging Face <c>qwen3_5_text</c>). Property names are the
/// PascalCase of the HF field names. Built from either the published multimodal wrapper layout
/// (<c>Qwen3_5ForConditionalGeneration</c> with a nested <c>text_config</c>) or a flat text-only config.
/// </summary>
public sealed record Qwen35TextConfig
{
    public const string LinearAttention = "linear_attention";
    public const string FullAttention = "full_attention";

    public required int VocabSize { get; init; }
    public required int HiddenSize { get; init; }
    public required int IntermediateSize { get; init; }
    public required int NumHiddenLayers { get; init; }
    public required int NumAttentionHeads { get; init; }
    public required int NumKeyValueHeads { get; init; }
    public required int HeadDim { get; init; }
    public required int LinearNumKeyHeads { get; init; }
    public required int LinearNumValueHeads { get; init; }
    public required int LinearKeyHeadDim { get; init; }
    public required int LinearValueHeadDim { get; init; }
    public required int LinearConvKernelDim { get; init; }
    /// <summary>"linear_attention" or "full_attention" per layer; always NumHiddenLayers long.</summary>
    public required IReadOnlyList<string> LayerTypes { get; init; }
    public double RmsNormEps { get; init; } = 1e-6;
    public double RopeTheta { get; init; } = 10_000_000;
    public double PartialRotaryFactor { get; init; } = 0.25;
    /// <summary>mRoPE section sizes; only parsed and written back (text-only positions make it a no-op).</summary>
    public IReadOnlyList<int> MropeSection { get; init; } = [11, 11, 10];
    public bool TieWordEmbeddings { get; init; }
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];
    public int MaxPositionEmbeddings { get; init; } = 32768;
    public double InitializerRange { get; init; } = 0.02;

    // Derived sizes, computed as Hugging Face's modeling_qwen3_5.py computes them from the config.
    /// <summary>R: the number of leading head dims that RoPE rotates.</summary>
    public int RotaryDim => (int)(HeadDim * PartialRotaryFactor);
    public int LinearKeyDim => LinearNumKeyHeads * LinearKeyHeadDim;
    public int LinearValueDim => LinearNumValueHeads * LinearValueHeadDim;
    /// <summary>Channels of the depthwise conv: [q | k | v] of the GDN.</summary>
    public int LinearConvDim => 2 * LinearKeyDim + LinearValueDim;
    public bool IsFullAttention(int layer) => LayerTypes[layer] == FullAttention;

    /// <summary>Reads a config.json (wrapper or flat layout). Bad or unsupported configs, and configs without a key
    /// that fixes the tensor shapes (hidden_size, num_hidden_layers, …), throw <see cref="ConfigException"/> naming the
    /// file and the key.</summary>
    public static Qwen35TextConfig Load(string configJsonPath)
    {
        if (!File.Exists(configJsonPath))
            throw new UserInputException($"{configJsonPath}: config file not found");
        return Parse(File.ReadAllText(configJsonPath), configJsonPath);
    }

    /// <summary>Parses config JSON text; <paramref name="sourceName"/> (usually the path) is used in error messages.</summary>
    public static Qwen35TextConfig Parse(string json, string sourceName)
    {
        JsonObject root;
        try
        {
            root = JsonNode.Parse(json) as JsonObject
                   ?? throw new ConfigException($"{sourceName}: the config is not a JSON object");
        }
        catch (JsonException e)
        {
            throw new ConfigException($"{sourceName}: invalid JSON: {e.Message}");
        }
        return new ConfigReader(root, sourceName).Read();
    }

    /// <summary>
    /// The built-in tiny config of the embedded default recipe: vocab 512 (covers the byte-level tokenizer), hidden
    /// 64, layers [lin, lin, lin, full], heads as in the golden tiny model (4 q / 2 kv heads of 16, GDN 2 k / 4 v heads
    /// of 16), tied embeddings so the tiny model stays small.
    /// </summary>
    public static Qwen35TextConfig Tiny() => new()
    {
        VocabSize = 512,
        HiddenSize = 64,
        IntermediateSize = 128,
        NumHiddenLayers = 4,
        NumAttentionHeads = 4,
        NumKeyValueHeads = 2,
        HeadDim = 16,
        LinearNumKeyHeads = 2,
        LinearNumValueHeads = 4,
        LinearKeyHeadDim = 16,
        LinearValueHeadDim = 16,
        LinearConvKernelDim = 4,
        LayerTypes = [LinearAttention, LinearAttention, LinearAttention, FullAttention],
        RmsNormEps = 1e-6,
        RopeTheta = 10_000_000,
        PartialRotaryFactor = 0.25,
        MropeSection = [1, 1, 0],
        TieWordEmbeddings = true,
        EosTokenIds = [],
        MaxPositionEmbeddings = 262144,
        InitializerRange = 0.02,
    };

    /// <summary>Writes a flat <c>qwen3_5_text</c> config.json that <see cref="Parse"/> reads back to an equal config.</summary>
    public string ToJson()
    {
        var o = new JsonObject
        {
            ["architectures"] = new JsonArray("Qwen3_5ForCausalLM"),
            ["model_type"] = "qwen3_5_text",
            ["vocab_size"] = VocabSize,
            ["hidden_size"] = HiddenSize,
            ["intermediate_size"] = IntermediateSize,
            ["num_hidden_layers"] = NumHiddenLayers,
            ["num_attention_heads"] = NumAttentionHeads,
            ["num_key_value_heads"] = NumKeyValueHeads,
            ["head_dim"] = HeadDim,
            ["linear_num_key_heads"] = LinearNumKeyHeads,
            ["linear_num_value_heads"] = LinearNumValueHeads,
            ["linear_key_head_dim"] = LinearKeyHeadDim,
            ["linear_value_head_dim"] = LinearValueHeadDim,
            ["linear_conv_kernel_dim"] = LinearConvKernelDim,
            ["layer_types"] = new JsonArray(LayerTypes.Select(t => (JsonNode?)JsonValue.Create(t)).ToArray()),
            ["rms_norm_eps"] = RmsNormEps,
            ["hidden_act"] = "silu",
            ["attention_bias"] = false,
            ["tie_word_embeddings"] = TieWordEmbeddings,
            ["max_position_embeddings"] = MaxPositionEmbeddings,
            ["initializer_range"] = InitializerRange,
            ["rope_parameters"] = new JsonObject
            {
                ["rope_type"] = "default",
                ["rope_theta"] = RopeTheta,
                ["partial_rotary_factor"] = PartialRotaryFactor,
                ["mrope_section"] = new JsonArray(MropeSection.Select(s => (JsonNode?)JsonValue.Create(s)).ToArray()),
                ["mrope_interleaved"] = true,
            },
        };
        if (EosTokenIds.Count == 1) o["eos_token_id"] = EosTokenIds[0];
        else if (EosTokenIds.Count > 1)
            o["eos_token_id"] = new JsonArray(EosTokenIds.Select(i => (JsonNode?)JsonValue.Create(i)).ToArray());
        return o.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>Value equality including the list-valued properties (records compare lists by reference).</summary>
    public bool Equals(Qwen35TextConfig? other) =>
        other is not null && ToJson() == other.ToJson();

    public override int GetHashCode() => ToJson().GetHashCode();

    /// <summary>One line per field, for logs and the inspect verb.</summary>
    public string Summary()
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture,
            $"vocab {VocabSize}, hidden {HiddenSize}, intermediate {IntermediateSize}, layers {NumHiddenLayers} ");
        sb.Append(CultureInfo.InvariantCulture,
            $"({LayerTypes.Count(t => t == LinearAttention)} linear, {LayerTypes.Count(t => t == FullAttention)} full); ");
        sb.Append(CultureInfo.InvariantCulture,
            $"attention {NumAttentionHeads}q/{NumKeyValueHeads}kv x {HeadDim} (rotary {RotaryDim}, theta {RopeTheta}); ");
        sb.Append(CultureInfo.InvariantCulture,
            $"GDN {LinearNumKeyHeads}k x {LinearKeyHeadDim} / {LinearNumValueHeads}v x {LinearValueHeadDim}, conv {LinearConvKernelDim}; ");
        sb.Append(TieWordEmbeddings ? "tied embeddings" : "separate lm_head");
        return sb.ToString();
    }
}
