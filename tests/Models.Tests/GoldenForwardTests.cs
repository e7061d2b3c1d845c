using Qwen35.Models.Generation;
using Qwen35.Training.Verification;
using static TorchSharp.torch;

namespace Qwen35.Models.Tests;

/// <summary>fp32 parity with Hugging Face's Qwen3.5 code on the golden tiny model (the exact bounds of
/// <see cref="GoldenBounds.Exact"/>, which `trainer verify` judges by too).</summary>
public class GoldenForwardTests
{
    [TestCase(0)]
    [TestCase(1)]
    [TestCase(2)]
    public void LogitsMatchGolden(int index)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var model = GoldenData.Model;
        var logits = model.Logits(model.Forward(new ModelInputs(GoldenData.Ids(GoldenData.Sequences[index])))).squeeze(0);
        var expected = GoldenData.Expected($"seq{index}.logits");
        Assert.That(logits.shape, Is.EqualTo(expected.shape));
        var diff = Comparison.MaxAbsDiff(logits, expected);
        TestContext.Out.WriteLine($"seq{index} max |Δlogit| = {diff:E3}");
        Assert.That(diff, Is.LessThanOrEqualTo(GoldenBounds.Exact.Logits));
    }

    [Test]
    public void LossesMatchGolden()
    {
        var expected = GoldenData.Reference.Losses;
        Assert.That(expected, Has.Length.EqualTo(3));
        for (var i = 0; i < 3; i++)
        {
            using var scope = NewDisposeScope();
            var loss = GoldenData.Model.SequenceLosses(GoldenData.Ids(GoldenData.Sequences[i]))[0];
            Assert.That(Comparison.LossGap(loss, expected[i]), Is.LessThanOrEqualTo(GoldenBounds.Exact.Loss), $"sequence {i}");
        }
    }

    [Test]
    public void HiddenStatesAndFinalNormMatchGolden()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var hidden = new List<Tensor>();
        var final = GoldenData.Model.TextModel.Forward(new ModelInputs(GoldenData.Ids(GoldenData.Sequences[0])), hidden);
        Assert.That(hidden, Has.Count.EqualTo(5));
        for (var i = 0; i < hidden.Count; i++)
            Assert.That(Comparison.MaxAbsDiff(hidden[i].squeeze(0), GoldenData.Expected($"seq0.hidden_states.{i}")),
                Is.LessThanOrEqualTo(GoldenBounds.Exact.Logits), $"hidden_states.{i}");
        Assert.That(Comparison.MaxAbsDiff(final.squeeze(0), GoldenData.Expected("seq0.final_norm")), Is.LessThanOrEqualTo(GoldenBounds.Exact.Logits));
    }

    [Test]
    public void CachedGreedyDecodeMatchesGolden()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var model = GoldenData.Model;
        var expectedTokens = GoldenData.Reference.GreedyTokens;
        var expectedDecode = GoldenData.Expected("seq0.greedy.decode_logits");

        using var cache = new ModelCache(model.Config);
        var prompt = GoldenData.Ids(GoldenData.Sequences[0][..GoldenData.Reference.PromptLength]);
        var last = model.Logits(model.Forward(new ModelInputs(prompt, Cache: cache))).select(1, -1);   // [1, V]
        var tokens = new List<long>();
        var decodeRows = new List<Tensor>();
        for (var step = 0; step < expectedTokens.Length; step++)
        {
            var next = last.argmax(-1).item<long>();
            tokens.Add(next);
            last = model.Logits(model.Forward(new ModelInputs(tensor(new[] { next }).view(1, 1), Cache: cache))).select(1, -1);
            decodeRows.Add(last.squeeze(0));
        }
        Assert.That(tokens, Is.EqualTo(expectedTokens));
        Assert.That(cache.SeenTokens, Is.EqualTo(prompt.shape[1] + expectedTokens.Length));
        Assert.That(Comparison.MaxAbsDiff(stack(decodeRows), expectedDecode), Is.LessThanOrEqualTo(GoldenBounds.Exact.Logits));
    }

    [Test]
    public void LoadReportCountsSkippedVisualAndMtp()
    {
        var report = GoldenData.Report;
        Assert.Multiple(() =>
        {
            Assert.That(report.Loaded, Is.EqualTo(92 - 21 - 15));
            Assert.That(report.Skipped["model.visual."], Is.EqualTo(21));
            Assert.That(report.Skipped["mtp."], Is.EqualTo(15));
            Assert.That(report.Tied, Is.False);
            Assert.That(report.Layout, Is.EqualTo("wrapper"));
            Assert.That(report.DtypesSeen, Is.EqualTo(new Dictionary<string, int> { ["F32"] = 56 }));
        });
    }
}
