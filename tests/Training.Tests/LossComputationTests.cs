using Qwen35.Models;
using Qwen35.Training.Loop;
using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Training.Tests;

public class LossComputationTests
{
    static void ZeroGrads(IEnumerable<(string, TorchSharp.Modules.Parameter Param)> ps)
    {
        foreach (var (_, p) in ps) p.grad?.zero_();
    }

    [Test]
    public void GradientAccumulationOfUnequalMicroBatchesEqualsOneBigBatch()
    {
        using var scope = NewDisposeScope();
        var (model, trainable) = TinySetup.Model();
        var g = new Generator(3);
        // Micro-batch 1 trains 4 targets, micro-batch 2 trains 16: a per-micro-batch mean would weigh them 4:1.
        var a = TinySetup.Batch(g, [12], [4]);
        var b = TinySetup.Batch(g, [20], [16]);
        Assert.That((a.TargetCount, b.TargetCount), Is.EqualTo((4L, 16L)));
        var both = new MicroBatch
        {
            Rows = 2, Length = 20,
            InputIds = [.. a.InputIds, .. new long[8], .. b.InputIds],
            Labels = [.. a.Labels, .. Enumerable.Repeat(-100L, 8), .. b.Labels],
            Documents = new PackedDocuments([[0], [0]], [12, 20]),
        };
        Assert.That(both.TargetCount, Is.EqualTo(20));

        // Accumulated: each micro-batch's loss SUM divided by the step's total of 20 targets.
        var sumA = LossComputation.ForwardBackward(model, a.ToTensors(CPU), 1.0 / 20, false, 0);
        var sumB = LossComputation.ForwardBackward(model, b.ToTensors(CPU), 1.0 / 20, false, 0);
        var accumulated = TinySetup.Grads(trainable);
        ZeroGrads(trainable);
        var sumBoth = LossComputation.ForwardBackward(model, both.ToTensors(CPU), 1.0 / 20, false, 0);
        var big = TinySetup.Grads(trainable);
        ZeroGrads(trainable);

        Assert.That(sumA + sumB, Is.EqualTo(sumBoth).Within(1e-4));
        for (var i = 0; i < big.Count; i++)
            Assert.That(accumulated[i].allclose(big[i], rtol: 1e-4, atol: 1e-7), Is.True, trainable[i].Name);

        // The pre-fix normalisation (mean per micro-batch, divided by the number of micro-batches) really differs,
        // so the equality above is a real test of the token-count normalisation.
        LossComputation.ForwardBackward(model, a.ToTensors(CPU), 1.0 / (4 * 2), false, 0);
        LossComputation.ForwardBackward(model, b.ToTensors(CPU), 1.0 / (16 * 2), false, 0);
        var naive = TinySetup.Grads(trainable);
        Assert.That(Enumerable.Range(0, big.Count).Any(i => !naive[i].allclose(big[i], rtol: 1e-2, atol: 1e-6)), Is.True);
    }

    [TestCase(false)]
    [TestCase(true)]
    public void LayerwiseCheckpointingGivesTheSameLossAndGradients(bool packed)
    {
        using var scope = NewDisposeScope();
        var (model, trainable) = TinySetup.Model();
        var g = new Generator(5);
        var mb = TinySetup.Batch(g, [24, 17], [20, 9]);
        if (packed)
            mb = TinySetup.Batch(g, [24, 24], [20, 9]) with { Documents = new PackedDocuments([[0, 10], [0, 5, 10]], [24, 24]) };
        var plain = LossComputation.ForwardBackward(model, mb.ToTensors(CPU), 0.25, false, 0);
        var plainGrads = TinySetup.Grads(trainable);
        ZeroGrads(trainable);
        var ckpt = LossComputation.ForwardBackward(model, mb.ToTensors(CPU), 0.25, true, 0);
        var ckptGrads = TinySetup.Grads(trainable);

        Assert.That(ckpt, Is.EqualTo(plain).Within(1e-9 * Math.Abs(plain)), "the rebuilt layer context reproduces Forward");
        for (var i = 0; i < plainGrads.Count; i++)
            Assert.That(ckptGrads[i].allclose(plainGrads[i], rtol: 1e-5, atol: 1e-8), Is.True, trainable[i].Name);
        Assert.That(plainGrads.Sum(t => t.abs().sum().ToDouble()), Is.GreaterThan(0));
    }

    [Test]
    public void HostTargetCountAndWeightMatchTheTensorSelection()
    {
        // The loop normalises by counts made on the host before the forward; they must describe exactly the targets
        // the device-side selection picks (shift once, drop -100), weights included, once the targets across a document
        // boundary are dropped from the labels: the host index must drop exactly those.
        using var scope = NewDisposeScope();
        var g = new Generator(6);
        var mb = TinySetup.Batch(g, [20, 20], [15, 12]) with
        {
            Documents = new PackedDocuments([[0, 8], [0, 15]], [20, 20]),
            TokenWeights = Enumerable.Range(0, 40).Select(i => i % 3 == 0 ? 0f : i % 3 == 1 ? 1f : 2.5f).ToArray(),
        };
        var labels = mb.Labels.ToArray();
        labels[8] = labels[20 + 15] = -100;   // the first token of each second document: not predictable
        var t = (mb with { Labels = labels }).ToTensors(CPU);
        var hidden = zeros(2, 20, 4);
        using var sel = ChunkedCrossEntropy.Select(hidden, t.Labels, ChunkedCrossEntropyTests.LabelledPositions(t.Labels), t.TokenWeights);
        Assert.That(sel.Count, Is.EqualTo(mb.TargetCount));
        Assert.That(sel.Weights!.sum().ToDouble(), Is.EqualTo(mb.TargetWeight).Within(1e-4));
        Assert.That(mb.TargetCount, Is.LessThan(15 + 12), "the document boundaries inside the trained spans drop targets");
    }
}
