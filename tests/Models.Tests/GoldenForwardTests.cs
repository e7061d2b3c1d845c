using Qwen35.Models.Generation;
using static TorchSharp.torch;

namespace Qwen35.Models.Tests;

/// <summary>fp32 parity with Hugging Face's Qwen3.5 code on the golden tiny model (README tolerances).</summary>
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
        var diff = GoldenData.MaxAbsDiff(logits, expected);
        TestContext.Out.WriteLine($"seq{index} max |Δlogit| = {diff:E3}");
        Assert.That(diff, Is.LessThanOrEqualTo(1e-4));
    }

    [Test]
    public void LossesMatchGolden()
    {
        var expected = GoldenData.ExpectedJson().GetProperty("losses").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        for (var i = 0; i < 3; i++)
        {
            using var scope = NewDisposeScope();
            var loss = GoldenData.Model.SequenceLosses(GoldenData.Ids(GoldenData.Sequences[i]))[0];
            Assert.That(loss, Is.EqualTo(expected[i]).Within(1e-5), $"sequence {i}");
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
            Assert.That(GoldenData.MaxAbsDiff(hidden[i].squeeze(0), GoldenData.Expected($"seq0.hidden_states.{i}")),
                Is.LessThanOrEqualTo(1e-4), $"hidden_states.{i}");
        Assert.That(GoldenData.MaxAbsDiff(final.squeeze(0), GoldenData.Expected("seq0.final_norm")), Is.LessThanOrEqualTo(1e-4));
    }

    [Test]
    public void CachedGreedyDecodeMatchesGolden()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var model = GoldenData.Model;
        var json = GoldenData.ExpectedJson().GetProperty("greedy");
        var expectedTokens = json.GetProperty("new_tokens").EnumerateArray().Select(e => e.GetInt64()).ToArray();
        var expectedDecode = GoldenData.Expected("seq0.greedy.decode_logits");

        using var cache = new ModelCache(model.Config);
        var prompt = GoldenData.Ids(GoldenData.Sequences[0]);
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
        Assert.That(GoldenData.MaxAbsDiff(stack(decodeRows), expectedDecode), Is.LessThanOrEqualTo(1e-4));
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
