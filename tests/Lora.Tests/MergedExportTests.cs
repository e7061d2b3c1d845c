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

    /// <summary>A source folder with the fake model's weights and a config; the model has adapters with non-zero B.</summary>
    static (FakeDecoder Model, string Source) AdaptedModelAndSource()
    {
        var source = TestPaths.TempDir("lora-merge-src");
        var model = FakeDecoder.Tiny(seed: 2);
        SafeTensorsWriter.Write(Path.Combine(source, "model.safetensors"), model.named_parameters().Select(p => (p.name, (Tensor)p.parameter)));
        File.WriteAllText(Path.Combine(source, "config.json"), "{\"model_type\": \"qwen3_5\"}");
        LoraInjector.Apply(model, new LoraOptions { Rank = 4, Alpha = 8, TargetModules = LoraTargets.Names("up_proj") }, seed: 9);
        return (model, source);
    }

    static string[] Listing(string dir) =>
        Directory.EnumerateFileSystemEntries(dir).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray()!;

    [Test]
    public void Export_IntoANonEmptyFolder_IsRefusedNamingIt_UnlessOverwrite()
    {
        using var scope = NewDisposeScope();
        var (model, source) = AdaptedModelAndSource();
        using var _ = model;
        var outDir = TestPaths.TempDir("lora-merge-existing");
        File.WriteAllText(Path.Combine(outDir, "old.txt"), "old");

        var e = Assert.Throws(Is.InstanceOf<UserInputException>(), () => MergedModelExport.Export(model, source, outDir))!;
        Assert.That(e.Message, Does.StartWith(outDir + ": "));
        Assert.That(Listing(outDir), Is.EqualTo(new[] { "old.txt" }));

        var written = MergedModelExport.Export(model, source, outDir, overwrite: true);
        Assert.That(Listing(outDir), Is.EqualTo(new[] { "config.json", "model.safetensors" }));
        Assert.That(written, Is.EquivalentTo(new[] { Path.Combine(outDir, "config.json"), Path.Combine(outDir, "model.safetensors") }),
            "the paths returned are the final ones, not the temporary folder's");
        Assert.That(Listing(Path.GetDirectoryName(outDir)!).Where(n => n.Contains(Path.GetFileName(outDir)) && n != Path.GetFileName(outDir)), Is.Empty);
    }

    [Test]
    public void Export_IntoTheSourceFolder_IsAnError_EvenWithOverwrite()
    {
        using var scope = NewDisposeScope();
        var (model, source) = AdaptedModelAndSource();
        using var _ = model;
        var before = File.ReadAllBytes(Path.Combine(source, "model.safetensors"));
        var link = Path.Combine(TestPaths.TempDir("lora-merge-link"), "to-source");
        Directory.CreateSymbolicLink(link, source);
        foreach (var sameFolder in new[] { source + "/.", link })
        {
            var e = Assert.Throws(Is.InstanceOf<UserInputException>(), () => MergedModelExport.Export(model, source, sameFolder, overwrite: true))!;
            Assert.That(e.Message, Does.StartWith(sameFolder + ": ").And.Contain("model's own folder"));
        }
        Assert.That(Listing(source), Is.EqualTo(new[] { "config.json", "model.safetensors" }));
        Assert.That(File.ReadAllBytes(Path.Combine(source, "model.safetensors")), Is.EqualTo(before));
    }

    [TestCase(false)]
    [TestCase(true)]
    public void Export_ThatFailsHalfWay_LeavesNoHalfWrittenOutput(bool outExists)
    {
        using var scope = NewDisposeScope();
        var (model, source) = AdaptedModelAndSource();
        using var _ = model;
        // A side file that cannot be copied: the failure comes after the shards have been written.
        File.CreateSymbolicLink(Path.Combine(source, "tokenizer.json"), Path.Combine(source, "no-such-file"));
        var parent = TestPaths.TempDir("lora-merge-parent");
        var outDir = Path.Combine(parent, "merged");
        if (outExists)
        {
            Directory.CreateDirectory(outDir);
            File.WriteAllText(Path.Combine(outDir, "old.txt"), "old");
        }

        Assert.Throws(Is.InstanceOf<IOException>(), () => MergedModelExport.Export(model, source, outDir, overwrite: true));

        Assert.That(Listing(parent), Is.EqualTo(outExists ? new[] { "merged" } : Array.Empty<string>()), "no temporary folder left");
        if (outExists) Assert.That(Listing(outDir), Is.EqualTo(new[] { "old.txt" }), "the previous output is untouched");
        Assert.That(LoraInjector.Adapters(model).All(a => !a.Merged), Is.True, "the model is left unmerged");
    }
}
