using Qwen35.Models.SafeTensors;
using Qwen35.Tests;
using static TorchSharp.torch;

namespace Qwen35.Lora.Tests;

public class MergedExportTests
{
    [Test]
    public void MergedExport_KeepsTheSourceLayout_AndReloadsToTheAdaptedOutput()
    {
        using var scope = NewDisposeScope();
        // A source checkpoint: the fake model's weights plus tensors a text-only model skips.
        var source = TestPaths.TempDir("lora-merge-src");
        using var baseModel = FakeDecoder.Tiny(seed: 2);
        var extra = new Dictionary<string, Tensor> { ["model.visual.blocks.0.attn.qkv.weight"] = randn(48, 16, generator: new Generator(12)), ["mtp.fc.weight"] = randn(64, 128, generator: new Generator(13)) };
        SafeTensorsWriter.Write(Path.Combine(source, "model.safetensors"),
            baseModel.named_parameters().Select(p => (p.name, (Tensor)p.parameter)).Concat(extra.Select(e => (e.Key, e.Value))));
        File.WriteAllText(Path.Combine(source, "config.json"), "{\"model_type\": \"qwen3_5\"}");
        File.WriteAllText(Path.Combine(source, "tokenizer.json"), "{}");

        LoraInjector.Apply(baseModel, new LoraOptions { Rank = 4, Alpha = 8, TargetModules = LoraTargets.AllLinear }, seed: 9);
        using (var g = new Generator(10))
        using (no_grad())
            foreach (var a in LoraInjector.Adapters(baseModel)) a.LoraB.weight.copy_(randn(a.LoraB.weight.shape, generator: g).mul(0.05));
        baseModel.eval();
        var x = randn(1, 6, 64, generator: new Generator(11));
        var adapted = baseModel.forward(x);

        var outDir = TestPaths.TempDir("lora-merge-out");
        var written = MergedModelExport.Export(baseModel, source, outDir, maxShardBytes: 200_000);

        Assert.That(written.Any(w => w.EndsWith("model.safetensors.index.json")), Is.True, "small shards force an index");
        Assert.That(File.ReadAllText(Path.Combine(outDir, "config.json")), Is.EqualTo("{\"model_type\": \"qwen3_5\"}"));
        Assert.That(File.Exists(Path.Combine(outDir, "tokenizer.json")), Is.True);
        Assert.That(LoraInjector.Adapters(baseModel).All(a => !a.Merged), Is.True, "export leaves the model unmerged");

        using var merged = SafeTensorsCheckpoint.Open(outDir);
        using var sourceCk = SafeTensorsCheckpoint.Open(source);
        Assert.That(merged.Names, Is.EquivalentTo(sourceCk.Names), "same key layout as the source");
        foreach (var (k, v) in extra) Assert.That(merged.Load(k).equal(v).all().item<bool>(), Is.True, $"{k} copied through");

        using var reloaded = FakeDecoder.Tiny(seed: 77);
        using (no_grad())
            foreach (var (name, p) in reloaded.named_parameters()) p.copy_(merged.Load(name));
        reloaded.eval();
        var y = reloaded.forward(x);
        // Merged W + s·B·A rounds differently from W·x + s·B·(A·x): compare relative to the output's scale.
        var scale = adapted.abs().max().item<float>();
        var diff = (y - adapted).abs().max().item<float>();
        Assert.That(diff, Is.LessThanOrEqualTo(1e-5 * Math.Max(1, scale)), $"max diff {diff} at output scale {scale}");
        // And the adapters really changed the weights.
        Assert.That(merged.Load("model.language_model.layers.0.mlp.up_proj.weight").allclose(sourceCk.Load("model.language_model.layers.0.mlp.up_proj.weight")), Is.False);
    }
}
