using Qwen35.Lora;
using Qwen35.Models;
using Qwen35.Training.Dpo;
using Qwen35.Training.Loop;
using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Training.Tests.Dpo;

/// <summary>
/// The library's DPO step (one forward of a micro-batch holding both sides of every pair, packed or padded, chunked
/// log-probs, the weighted chunked backward) against an independent computation written out here: each sequence
/// through its own plain forward, full log-softmax, the formulas of TRL's dpo_loss, autograd.
/// </summary>
public class DpoGradientTests
{
    static readonly (int, int, int)[] Lengths = [(9, 5, 7), (4, 8, 3), (12, 2, 6)];

    [TestCase(false, DpoLossType.Sigmoid, null, false)]
    [TestCase(true, DpoLossType.Sigmoid, null, false)]
    [TestCase(true, DpoLossType.Sigmoid, 0.7, false)]
    [TestCase(false, DpoLossType.Sigmoid, 0.7, false)]
    [TestCase(true, DpoLossType.Ipo, null, false)]
    [TestCase(false, DpoLossType.Ipo, 0.3, false)]
    [TestCase(true, DpoLossType.Sigmoid, 0.7, true)]
    public void LossRewardsAndLoraGradientsEqualAPlainPerSequenceComputation(bool packed, DpoLossType lossType, double? rpoAlpha, bool checkpointing)
    {
        using var scope = NewDisposeScope();
        var options = new DpoOptions { Beta = 0.2, LossType = lossType, RpoAlpha = rpoAlpha, LabelSmoothing = lossType == DpoLossType.Sigmoid ? 0.05 : 0 };
        var pairs = DpoFixtures.Pairs(11, Lengths);
        // Row length 32: packing puts several of the six sequences (lengths 14, 16, 12, 7, 14, 18) in a row.
        var data = new DpoData(pairs, [], pairsPerBatch: 3, packing: packed, rowLength: 32, padId: 0, seed: 5);
        var reference = (Chosen: new[] { -40.0, -52.5, -18.25 }, Rejected: new[] { -47.0, -30.5, -33.0 });
        data.SetReference(reference.Chosen, reference.Rejected);
        var batch = data.Build([0, 1, 2]);
        Assert.That(batch.Documents?.IsPacked ?? false, Is.EqualTo(packed), "the batch layout under test");
        using var model = DpoFixtures.Model();

        // Library: the micro-batch is the whole step, so the gradient scale is 1/pairs (the mean over pairs).
        var objective = new DpoObjective(options);
        var sums = objective.ForwardBackward(model, batch, batch.ToTensors(CPU), 1.0 / pairs.Count, new TrainingForward(checkpointing), chunkRows: 5)
            .data<double>().ToArray();
        var libraryGrads = DpoFixtures.Grads(model);
        DpoFixtures.ZeroGrads(model);

        // Independent: per-sequence log-probs from plain forwards, TRL's formulas written out.
        var losses = new List<Tensor>();
        var cr = new List<double>();
        var rr = new List<double>();
        var lc = new List<double>();
        for (var i = 0; i < pairs.Count; i++)
        {
            var p = pairs[i];
            var c = DpoFixtures.PlainSequenceLogp(model, p.PromptIds, p.ChosenIds);
            var r = DpoFixtures.PlainSequenceLogp(model, p.PromptIds, p.RejectedIds);
            double nc = p.ChosenIds.Length, nr = p.RejectedIds.Length;
            var ipo = lossType == DpoLossType.Ipo;
            var pc = ipo ? c / nc : c;
            var pr = ipo ? r / nr : r;
            var refC = ipo ? reference.Chosen[i] / nc : reference.Chosen[i];
            var refR = ipo ? reference.Rejected[i] / nr : reference.Rejected[i];
            var z = (pc - pr) - (refC - refR);
            var loss = ipo
                ? (z - 1 / (2 * options.Beta)).pow(2)
                : -(1 - options.LabelSmoothing) * nn.functional.logsigmoid(options.Beta * z) - options.LabelSmoothing * nn.functional.logsigmoid(-options.Beta * z);
            if (rpoAlpha is { } alpha) loss = loss + alpha * (-c / nc);
            losses.Add(loss);
            cr.Add(options.Beta * (pc.item<double>() - refC));
            rr.Add(options.Beta * (pr.item<double>() - refR));
            lc.Add(pc.item<double>());
        }
        var mean = stack(losses).mean();
        mean.backward();
        var expectedGrads = DpoFixtures.Grads(model);

        var n = pairs.Count;
        Assert.That(sums[0] / n, Is.EqualTo(mean.item<double>()).Within(1e-4).Percent, "loss (fp32 model: 1e-6 relative)");
        Assert.That(sums[1] / n, Is.EqualTo(cr.Average()).Within(1e-5), "rewards/chosen");
        Assert.That(sums[2] / n, Is.EqualTo(rr.Average()).Within(1e-5), "rewards/rejected");
        Assert.That(sums[3] / n, Is.EqualTo(cr.Zip(rr).Average(x => x.First > x.Second ? 1.0 : 0.0)), "rewards/accuracies");
        Assert.That(sums[4] / n, Is.EqualTo(cr.Zip(rr).Average(x => x.First - x.Second)).Within(1e-5), "rewards/margins");
        Assert.That(sums[5] / n, Is.EqualTo(lc.Average()).Within(1e-5).Percent, "logps/chosen");
        Assert.That(sums, Has.Length.EqualTo(rpoAlpha is null ? 7 : 8));

        Assert.That(libraryGrads.Count, Is.GreaterThan(0));
        var maxGrad = expectedGrads.Max(g => g.abs().max().item<float>());
        Assert.That(maxGrad, Is.GreaterThan(1e-4f), "the gradients under test are not all zero");
        for (var k = 0; k < libraryGrads.Count; k++)
        {
            var diff = (libraryGrads[k] - expectedGrads[k]).abs().max().item<float>();
            Assert.That(diff, Is.LessThan(2e-5f * maxGrad + 1e-7f), $"LoRA parameter {k}: max |Δgrad| {diff} (max grad {maxGrad})");
        }
    }

    [Test]
    public void PackedSequenceLogProbsEqualPlainOnes()
    {
        using var scope = NewDisposeScope();
        var pairs = DpoFixtures.Pairs(7, Lengths);
        using var model = DpoFixtures.Model();
        var packed = new DpoData(pairs, [], 3, packing: true, rowLength: 40, padId: 0, seed: 1).Build([2, 0, 1]);
        Assert.That(packed.Documents!.IsPacked);
        var (chosen, rejected) = DpoObjective.SequenceLogps(model, packed, chunkRows: 4);
        using var noGrad = no_grad();
        for (var k = 0; k < 3; k++)
        {
            var p = pairs[packed.Pairs!.PairIndex[k]];
            Assert.That(chosen[k], Is.EqualTo(DpoFixtures.PlainSequenceLogp(model, p.PromptIds, p.ChosenIds).item<double>()).Within(1e-4).Percent);
            Assert.That(rejected[k], Is.EqualTo(DpoFixtures.PlainSequenceLogp(model, p.PromptIds, p.RejectedIds).item<double>()).Within(1e-4).Percent);
        }
    }
}
