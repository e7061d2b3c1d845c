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
        var e = Assert.Throws<InvalidDataException>(() => Qwen35TextConfig.Parse(root.ToJsonString(), "/models/x/config.json"))!;
        Assert.That(e.Message, Does.Contain("/models/x/config.json"));
        Assert.That(e.Message, Does.Contain("text_config." + expectedField));
    }

    [Test]
    public void MissingRopeThetaIsAnError()
    {
        var e = Assert.Throws<InvalidDataException>(() =>
            Qwen35TextConfig.Parse("""{"model_type": "qwen3_5_text", "hidden_size": 32}""", "c.json"))!;
        Assert.That(e.Message, Does.Contain("c.json").And.Contain("rope_theta"));
    }

    [Test]
    public void OtherModelTypeIsRejected()
    {
        var e = Assert.Throws<InvalidDataException>(() =>
            Qwen35TextConfig.Parse("""{"model_type": "qwen3_next", "rope_theta": 1}""", "c.json"))!;
        Assert.That(e.Message, Does.Contain("model_type"));
    }
}
