using System.Text.Json.Nodes;
using Qwen35.Models.Config;
using Qwen35.Tests;

namespace Qwen35.Models.Tests;

public class ConfigTests
{
    static string GoldenConfigPath => Path.Combine(TestPaths.GoldenTiny, "config.json");

    // A flat qwen3_5_text config with legacy RoPE keys and full_attention_interval instead of layer_types.
    const string FlatLegacy = """
    {
      "model_type": "qwen3_5_text", "vocab_size": 100, "hidden_size": 32, "intermediate_size": 48,
      "num_hidden_layers": 6, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8,
      "linear_num_key_heads": 2, "linear_num_value_heads": 6, "linear_key_head_dim": 8, "linear_value_head_dim": 4,
      "linear_conv_kernel_dim": 3, "full_attention_interval": 3, "rope_theta": 5000.0, "partial_rotary_factor": 0.5,
      "rope_scaling": {"mrope_section": [1, 1, 0]}, "tie_word_embeddings": true, "eos_token_id": [7, 9]
    }
    """;

    [Test]
    public void GoldenWrapperConfigReadsTextConfig()
    {
        var c = Qwen35TextConfig.Load(GoldenConfigPath);
        Assert.Multiple(() =>
        {
            Assert.That(c.VocabSize, Is.EqualTo(512));
            Assert.That(c.HiddenSize, Is.EqualTo(64));
            Assert.That(c.IntermediateSize, Is.EqualTo(128));
            Assert.That(c.LayerTypes, Is.EqualTo(new[] { "linear_attention", "linear_attention", "linear_attention", "full_attention" }));
            Assert.That(c.NumAttentionHeads, Is.EqualTo(4));
            Assert.That(c.NumKeyValueHeads, Is.EqualTo(2));
            Assert.That(c.HeadDim, Is.EqualTo(16));
            Assert.That(c.RotaryDim, Is.EqualTo(4));
            Assert.That(c.RopeTheta, Is.EqualTo(1e7));
            Assert.That(c.LinearConvDim, Is.EqualTo(128));
            Assert.That(c.MropeSection, Is.EqualTo(new[] { 1, 1, 0 }));
            Assert.That(c.EosTokenIds, Is.EqualTo(new[] { 511 }));
            Assert.That(c.TieWordEmbeddings, Is.False);
        });
    }

    [Test]
    public void FlatLegacyConfigDerivesLayerTypesAndRope()
    {
        var c = Qwen35TextConfig.Parse(FlatLegacy, "flat.json");
        Assert.Multiple(() =>
        {
            Assert.That(c.LayerTypes, Is.EqualTo(new[] { "linear_attention", "linear_attention", "full_attention",
                "linear_attention", "linear_attention", "full_attention" }));
            Assert.That(c.RopeTheta, Is.EqualTo(5000.0));
            Assert.That(c.PartialRotaryFactor, Is.EqualTo(0.5));
            Assert.That(c.RotaryDim, Is.EqualTo(4));
            Assert.That(c.MropeSection, Is.EqualTo(new[] { 1, 1, 0 }));
            Assert.That(c.TieWordEmbeddings, Is.True);
            Assert.That(c.EosTokenIds, Is.EqualTo(new[] { 7, 9 }));
            Assert.That(c.RmsNormEps, Is.EqualTo(1e-6));
        });
    }

    [Test]
    public void TopLevelTieWinsForWrapper()
    {
        var root = JsonNode.Parse(File.ReadAllText(GoldenConfigPath))!.AsObject();
        root["tie_word_embeddings"] = true; // text_config still says false: HF ties from the outer config
        Assert.That(Qwen35TextConfig.Parse(root.ToJsonString(), "x").TieWordEmbeddings, Is.True);
    }

    [Test]
    public void ToJsonRoundTrips()
    {
        foreach (var c in new[] { Qwen35TextConfig.Load(GoldenConfigPath), Qwen35TextConfig.Tiny(), Qwen35TextConfig.Parse(FlatLegacy, "f") })
        {
            var back = Qwen35TextConfig.Parse(c.ToJson(), "roundtrip");
            Assert.That(back, Is.EqualTo(c));
            Assert.That(back.LayerTypes, Is.EqualTo(c.LayerTypes));
        }
    }

    [Test]
    public void TinyConfigIsConsistent()
    {
        var t = Qwen35TextConfig.Tiny();
        Assert.That(t.VocabSize, Is.EqualTo(512));
        Assert.That(t.HiddenSize, Is.EqualTo(64));
        Assert.That(t.LayerTypes, Has.Count.EqualTo(t.NumHiddenLayers));
        Assert.That(Qwen35TextConfig.Parse(t.ToJson(), "tiny"), Is.EqualTo(t));
    }

    [TestCase("num_experts", "8", "num_experts")]
    [TestCase("layer_types", "[\"linear_attention\", \"sliding_attention\", \"linear_attention\", \"full_attention\"]", "layer_types[1]")]
    [TestCase("layer_types", "[\"linear_attention\", \"full_attention\"]", "layer_types")]
    [TestCase("num_key_value_heads", "3", "num_attention_heads")]
    [TestCase("linear_num_key_heads", "3", "linear_num_value_heads")]
    [TestCase("hidden_size", "\"big\"", "hidden_size")]
    [TestCase("hidden_act", "\"gelu\"", "hidden_act")]
    public void UnsupportedConfigNamesFieldAndFile(string field, string valueJson, string expectedField)
    {
        var root = JsonNode.Parse(File.ReadAllText(GoldenConfigPath))!.AsObject();
        root["text_config"]![field] = JsonNode.Parse(valueJson);
        var e = Assert.Throws(Is.InstanceOf<UserInputException>(), () => Qwen35TextConfig.Parse(root.ToJsonString(), "/models/x/config.json"))!;
        Assert.That(e.Message, Does.Contain("/models/x/config.json"));
        Assert.That(e.Message, Does.Contain("text_config." + expectedField));
    }

    [Test]
    public void MissingRopeThetaIsAnError()
    {
        var flat = JsonNode.Parse(FlatLegacy)!.AsObject();
        flat.Remove("rope_theta");
        var e = Assert.Throws(Is.InstanceOf<UserInputException>(), () => Qwen35TextConfig.Parse(flat.ToJsonString(), "c.json"))!;
        Assert.That(e.Message, Does.StartWith("c.json: ").And.Contain("rope_theta"));
    }

    // The keys that fix the tensor shapes and whose HF defaults are 9B numbers (hidden 4096, 32 layers, …): without
    // them a small model's config used to load as a 9B skeleton and fail later with dozens of shape mismatches.
    static readonly string[] RequiredKeys =
    [
        "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
        "head_dim", "linear_num_key_heads", "linear_num_value_heads", "linear_key_head_dim", "linear_value_head_dim",
    ];

    [TestCaseSource(nameof(RequiredKeys))]
    public void MissingRequiredKey_InTheWrapperLayout_IsAnErrorNamingFileAndKey(string key)
    {
        var root = JsonNode.Parse(File.ReadAllText(GoldenConfigPath))!.AsObject();
        root["text_config"]!.AsObject().Remove(key);
        var e = Assert.Throws(Is.InstanceOf<UserInputException>(), () => Qwen35TextConfig.Parse(root.ToJsonString(), "/models/x/config.json"))!;
        Assert.That(e.Message, Is.EqualTo($"/models/x/config.json: text_config.{key} is missing; it is required (it fixes the tensor shapes and has no default that fits every model size)"));
    }

    [TestCaseSource(nameof(RequiredKeys))]
    public void MissingRequiredKey_InTheFlatLayout_IsAnErrorNamingFileAndKey(string key)
    {
        var flat = JsonNode.Parse(FlatLegacy)!.AsObject();
        flat.Remove(key);
        var e = Assert.Throws(Is.InstanceOf<UserInputException>(), () => Qwen35TextConfig.Parse(flat.ToJsonString(), "flat.json"))!;
        Assert.That(e.Message, Does.StartWith($"flat.json: {key} is missing; it is required"));
    }

    [Test]
    public void SeveralMissingRequiredKeys_AreNamedTogetherOnOneLine()
    {
        var e = Assert.Throws(Is.InstanceOf<UserInputException>(), () =>
            Qwen35TextConfig.Parse("""{"model_type": "qwen3_5_text", "vocab_size": 100, "rope_theta": 1e7}""", "c.json"))!;
        Assert.That(e.Message, Is.EqualTo("c.json: hidden_size, intermediate_size, num_hidden_layers, num_attention_heads, " +
            "num_key_value_heads, head_dim, linear_num_key_heads, linear_num_value_heads, linear_key_head_dim, linear_value_head_dim " +
            "are missing; they are required (they fix the tensor shapes and have no default that fits every model size)"));
        Assert.That(e.Message, Does.Not.Contain("\n"));
    }

    [Test]
    public void KeysWithAFamilyWideDefault_MayBeLeftOut()
    {
        // HF's defaults that every Qwen3.5 size shares: conv kernel 4, a full-attention layer every 4th, eps 1e-6,
        // partial rotary 0.25, untied (flat), no eos.
        var flat = JsonNode.Parse(FlatLegacy)!.AsObject();
        foreach (var key in new[] { "linear_conv_kernel_dim", "full_attention_interval", "partial_rotary_factor", "tie_word_embeddings", "eos_token_id", "rope_scaling" })
            flat.Remove(key);
        var c = Qwen35TextConfig.Parse(flat.ToJsonString(), "flat.json");
        Assert.Multiple(() =>
        {
            Assert.That(c.LinearConvKernelDim, Is.EqualTo(4));
            Assert.That(c.LayerTypes, Is.EqualTo(new[] { "linear_attention", "linear_attention", "linear_attention",
                "full_attention", "linear_attention", "linear_attention" }));
            Assert.That(c.PartialRotaryFactor, Is.EqualTo(0.25));
            Assert.That(c.TieWordEmbeddings, Is.False);
            Assert.That(c.EosTokenIds, Is.Empty);
            Assert.That(c.MropeSection, Is.EqualTo(new[] { 11, 11, 10 }));
            Assert.That(c.RmsNormEps, Is.EqualTo(1e-6));
        });
    }

    [Test]
    public void OtherModelTypeIsRejected()
    {
        var e = Assert.Throws(Is.InstanceOf<UserInputException>(), () =>
            Qwen35TextConfig.Parse("""{"model_type": "qwen3_next", "rope_theta": 1}""", "c.json"))!;
        Assert.That(e.Message, Does.Contain("model_type"));
    }
}
