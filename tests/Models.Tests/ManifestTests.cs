using Qwen35.Models.Config;
using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Models.Tests;

/// <summary>Parameter names/shapes per config, checked against the built module tree and the published models' totals.</summary>
public class ManifestTests
{
    static Qwen35TextConfig Published(int hidden, int layers, int inter, int heads, int kvHeads, int lk, int lv, bool tied) => new()
    {
        VocabSize = 248320, HiddenSize = hidden, IntermediateSize = inter, NumHiddenLayers = layers,
        NumAttentionHeads = heads, NumKeyValueHeads = kvHeads, HeadDim = 256,
        LinearNumKeyHeads = lk, LinearNumValueHeads = lv, LinearKeyHeadDim = 128, LinearValueHeadDim = 128,
        LinearConvKernelDim = 4,
        LayerTypes = Enumerable.Range(0, layers).Select(i => (i + 1) % 4 == 0 ? "full_attention" : "linear_attention").ToList(),
        TieWordEmbeddings = tied,
    };

    public static Qwen35TextConfig Config9B => Published(4096, 32, 12288, 16, 4, 16, 32, tied: false);

    // Totals by the published configs' shape arithmetic; the 9B one equals the parameter count of HF's
    // Qwen3_5ForCausalLM built from Qwen/Qwen3.5-9B's config.
    [TestCase("9B", 8_953_803_264L, 427)]
    [TestCase("27B", 26_895_998_464L, 64 / 4 * 3 * 14 + 64 / 4 * 11 + 3)]
    [TestCase("0.8B", 752_393_024L, 18 * 14 + 6 * 11 + 2)]
    public void PublishedSizesMatchTheArchitectureDoc(string size, long expectedParams, int expectedTensors)
    {
        var config = size switch
        {
            "9B" => Config9B,
            "27B" => Published(5120, 64, 17408, 24, 4, 16, 48, tied: false),
            _ => Published(1024, 24, 3584, 8, 2, 16, 16, tied: true),
        };
        var manifest = ParameterManifest.For(config);
        Assert.That(ParameterManifest.TotalParameters(config), Is.EqualTo(expectedParams));
        Assert.That(manifest, Has.Count.EqualTo(expectedTensors));
    }

    [Test]
    public void NineBTableShapes()
    {
        var m = ParameterManifest.For(Config9B).ToDictionary(e => e.Name, e => e.Shape);
        const string l0 = "model.language_model.layers.0.", l3 = "model.language_model.layers.3.";
        Assert.Multiple(() =>
        {
            Assert.That(m[l3 + "self_attn.q_proj.weight"], Is.EqualTo(new long[] { 8192, 4096 }));
            Assert.That(m[l3 + "self_attn.k_proj.weight"], Is.EqualTo(new long[] { 1024, 4096 }));
            Assert.That(m[l3 + "self_attn.o_proj.weight"], Is.EqualTo(new long[] { 4096, 4096 }));
            Assert.That(m[l3 + "self_attn.q_norm.weight"], Is.EqualTo(new long[] { 256 }));
            Assert.That(m[l0 + "linear_attn.in_proj_qkv.weight"], Is.EqualTo(new long[] { 8192, 4096 }));
            Assert.That(m[l0 + "linear_attn.in_proj_z.weight"], Is.EqualTo(new long[] { 4096, 4096 }));
            Assert.That(m[l0 + "linear_attn.in_proj_b.weight"], Is.EqualTo(new long[] { 32, 4096 }));
            Assert.That(m[l0 + "linear_attn.conv1d.weight"], Is.EqualTo(new long[] { 8192, 1, 4 }));
            Assert.That(m[l0 + "linear_attn.A_log"], Is.EqualTo(new long[] { 32 }));
            Assert.That(m[l0 + "linear_attn.norm.weight"], Is.EqualTo(new long[] { 128 }));
            Assert.That(m[l0 + "mlp.down_proj.weight"], Is.EqualTo(new long[] { 4096, 12288 }));
            Assert.That(m["lm_head.weight"], Is.EqualTo(new long[] { 248320, 4096 }));
            Assert.That(m.Keys.Count(k => k.Contains("self_attn.q_proj")), Is.EqualTo(8));
            Assert.That(m.Keys.Count(k => k.Contains("linear_attn.A_log")), Is.EqualTo(24));
        });
    }

    [TestCase(true)]
    [TestCase(false)]
    public void BuiltModuleTreeEqualsManifest(bool tied)
    {
        // The tiny model in bf16: names, shapes and which tensors stay fp32 must match the manifest exactly.
        var config = Qwen35TextConfig.Tiny() with { TieWordEmbeddings = tied };
        using var model = new Qwen35ForCausalLM(config, ScalarType.BFloat16);
        var built = model.named_parameters().Select(p => (p.name, Shape: string.Join(",", p.parameter.shape), p.parameter.dtype)).ToList();
        var manifest = ParameterManifest.For(config)
            .Select(e => (e.Name, Shape: string.Join(",", e.Shape), dtype: e.KeptFp32 ? ScalarType.Float32 : ScalarType.BFloat16)).ToList();
        Assert.That(built.OrderBy(b => b.name, StringComparer.Ordinal), Is.EqualTo(manifest.OrderBy(m => m.Name, StringComparer.Ordinal)));
        Assert.That(built.Any(b => b.name == "lm_head.weight"), Is.EqualTo(!tied));
        Assert.That(model.parameters().All(p => !p.requires_grad), Is.True, "base weights are frozen");
    }

    [Test]
    public void NineBModuleTreeOnMetaDeviceEqualsManifest()
    {
        // Shape-only construction of the real 9B tree: the meta device allocates no storage.
        Device meta;
        Qwen35ForCausalLM model;
        try
        {
            meta = new Device(DeviceType.META);
            model = new Qwen35ForCausalLM(Config9B, ScalarType.BFloat16, meta);
        }
        catch (Exception e) when (e is not AssertionException)
        {
            Assert.Ignore($"TorchSharp cannot build on the meta device here ({e.GetType().Name}: {e.Message}); " +
                          "the 9B shapes are covered by config arithmetic in PublishedSizesMatchTheArchitectureDoc");
            return;
        }
        using (model)
        {
            var built = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.shape);
            var manifest = ParameterManifest.For(Config9B);
            Assert.That(built.Keys.Order(StringComparer.Ordinal), Is.EqualTo(manifest.Select(e => e.Name).Order(StringComparer.Ordinal)));
            foreach (var e in manifest) Assert.That(built[e.Name], Is.EqualTo(e.Shape), e.Name);
            Assert.That(built.Values.Sum(s => s.Aggregate(1L, (a, b) => a * b)), Is.EqualTo(8_953_803_264L));
        }
    }
}
