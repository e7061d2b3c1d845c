using Qwen35.Models.SafeTensors;
using Qwen35.Tests;
using static TorchSharp.torch;

namespace Qwen35.Models.Tests.SafeTensors;

public class SafeTensorsCheckpointTests
{
    [Test]
    public void FolderWithModelSafetensorsOpensTheSingleFile()
    {
        using var checkpoint = SafeTensorsCheckpoint.Open(TestPaths.GoldenTiny);
        Assert.That(checkpoint.Names, Has.Count.EqualTo(92));
        Assert.That(checkpoint.Files, Is.EqualTo(new[] { Path.Combine(TestPaths.GoldenTiny, "model.safetensors") }));
        Assert.That(checkpoint.Info("model.language_model.layers.0.mlp.down_proj.weight").Shape, Is.EqualTo(new long[] { 64, 128 }));
    }

    [Test]
    public void GoldenExpectedFileOpensByPath()
    {
        using var expected = SafeTensorsCheckpoint.Open(Path.Combine(TestPaths.GoldenTiny, "expected.safetensors"));
        Assert.That(expected.Names, Does.Contain("seq2.logits").And.Contain("lora.seq0.loss"));
        Assert.That(expected.Info("seq1.logits").Shape, Is.EqualTo(new long[] { 70, 512 }));
        using var losses = expected.Load("losses");
        // README: losses = [6.31, 6.54, 6.54] (2 decimals).
        Assert.That(losses.data<float>().ToArray(), Is.EqualTo(new[] { 6.31f, 6.54f, 6.54f }).Within(0.006f));
    }
}
