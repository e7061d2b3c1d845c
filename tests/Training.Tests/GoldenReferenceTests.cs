using Qwen35.Tests;
using Qwen35.Training.Verification;
using static TorchSharp.torch;

namespace Qwen35.Training.Tests;

/// <summary>The one reader of the Hugging Face reference set (`trainer verify` and the golden tests read through it),
/// against what tests/fixtures/qwen35-tiny-a/README.md and expected.json state.</summary>
public class GoldenReferenceTests
{
    [Test]
    public void ReadsTheGoldenSetAsItsReadmeDescribes()
    {
        using var golden = GoldenReference.Open(TestPaths.GoldenTiny);
        Assert.Multiple(() =>
        {
            Assert.That(golden.Sequences.Select(s => s.Length), Is.EqualTo(new[] { 37, 70, 130 }));
            Assert.That(golden.Losses, Has.Length.EqualTo(3));
            Assert.That(golden.GreedyTokens, Is.EqualTo(new long[] { 477, 472, 116, 34, 510, 76, 63, 12, 111, 188, 373, 162 }));
            Assert.That(golden.PromptLength, Is.EqualTo(37));
            Assert.That(golden.LoraSequence, Is.EqualTo(0));
            Assert.That(golden.LoraLoss, Is.EqualTo(6.371818542480469));
            // r = 4 on 11 modules: an A and a B gradient each, under PEFT's keys.
            Assert.That(golden.GradientKeys.Count(), Is.EqualTo(22));
            Assert.That(golden.GradientKeys, Has.All.StartWith("base_model.model.model.language_model.layers."));
            Assert.That(golden.Tensor("seq2.logits").shape, Is.EqualTo(new long[] { 130, 512 }));
            Assert.That(golden.Tensor("seq0.logits").dtype, Is.EqualTo(ScalarType.Float32));
        });
        var e = Assert.Throws<UserInputException>(() => golden.Tensor("seq9.logits"));
        Assert.That(e!.Message, Is.EqualTo($"{golden.ExpectedPath}: no tensor 'seq9.logits'"));
    }

    [Test]
    public void AMissingOrMalformedKeyIsNamedWithItsFile()
    {
        var dir = TestPaths.TempDir("qwen35-golden-reader");
        foreach (var file in Directory.EnumerateFiles(TestPaths.GoldenTiny, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(dir, Path.GetRelativePath(TestPaths.GoldenTiny, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
        var expected = Path.Combine(dir, "expected.json");
        File.WriteAllText(expected, """{"losses": [1, 2, 3], "greedy": {"prompt_index": 0}, "lora": {"sequence_index": 0, "loss": 1}}""");
        var e = Assert.Throws<UserInputException>(() => GoldenReference.Open(dir));
        Assert.That(e!.Message, Is.EqualTo($"{expected}: no key 'greedy.prompt_length' (expected the layout of tests/fixtures/qwen35-tiny-a)"));

        File.WriteAllText(expected, """{"losses": [1, 2, "three"]}""");
        e = Assert.Throws<UserInputException>(() => GoldenReference.Open(dir));
        Assert.That(e!.Message, Does.StartWith($"{expected}: 'losses' has the wrong type or range"));
    }
}
