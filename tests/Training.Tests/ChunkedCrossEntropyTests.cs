using Qwen35.Models;
using Qwen35.Tests;
using Qwen35.Training.Loop;
using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Training.Tests;

public class ChunkedCrossEntropyTests
{
    /// <summary>The reference: full logits, shift by one, F.cross_entropy(sum, ignore_index=-100).</summary>
    static Tensor FullLoss(Tensor hidden, Tensor labels, Tensor w)
    {
        var logits = hidden.matmul(w.t());                                  // [B,T,V]
        var shifted = logits[.., ..^1, ..].reshape(-1, w.size(0));
        var targets = labels[.., 1..].reshape(-1);
        return nn.functional.cross_entropy(shifted, targets, ignore_index: -100, reduction: nn.Reduction.Sum);
    }

    static (Tensor Hidden, Tensor Labels, Tensor W) Case()
    {
        var g = new Generator(7);
        var hidden = randn([2, 9, 16], generator: g, dtype: ScalarType.Float64).to(ScalarType.Float32).requires_grad_(true);
        var w = randn([50, 16], generator: g).mul(0.3);
        var labels = randint(0, 50, [2, 9], generator: g, dtype: ScalarType.Int64);
        labels[0, 0] = tensor(-100L); labels[0, 3] = tensor(-100L); labels[1, 5] = tensor(-100L); labels[1, 8] = tensor(-100L);
        return (hidden, labels, w);
    }

    /// <summary>The independent reference for a target index: every shifted position whose label is not -100, found
    /// on the tensor with nonzero (flat indices into [B, T-1]).</summary>
    internal static Tensor LabelledPositions(Tensor labels) => labels[.., 1..].ne(-100).flatten().nonzero().squeeze(1);

    [TestCase(1024)]
    [TestCase(4)]
    [TestCase(1)]
    public void ValueAndGradientEqualFullCrossEntropy(int chunkRows)
    {
        using var scope = NewDisposeScope();
        var (hidden, labels, w) = Case();
        var reference = FullLoss(hidden, labels, w);
        reference.backward();
        var refGrad = hidden.grad!.clone();
        hidden.grad!.zero_();

        using var sel = ChunkedCrossEntropy.Select(hidden, labels, LabelledPositions(labels));
        Assert.That(sel.Count, Is.EqualTo(2 * 8 - 3), "16 shifted targets, 3 of them ignored (label at t=0 is never a target)");
        var sum = ChunkedCrossEntropy.SumLossBackwardOnDevice(hidden, sel, w, gradScale: 0.5, chunkRows).ToDouble();
        Assert.That(sum, Is.EqualTo(reference.ToDouble()).Within(1e-4));
        Assert.That(hidden.grad!.allclose(refGrad.mul(0.5), rtol: 1e-5, atol: 1e-6), Is.True, "chunked backward = scaled full gradient");
    }

    [Test]
    public void TargetsAcrossPackedDocumentBoundariesAreDropped()
    {
        using var scope = NewDisposeScope();
        var (hidden, labels, w) = Case();
        // Row 0 holds documents starting at 0, 3 and 7; row 1 one document. The micro-batch derives the trained
        // positions (its TargetIndex) from the labels and those starts.
        var mb = new MicroBatch
        {
            Rows = 2, Length = 9, InputIds = new long[18], Labels = labels.data<long>().ToArray(),
            Documents = new PackedDocuments([[0, 3, 7], [0]], [9, 9]),
        };
        using var sel = ChunkedCrossEntropy.Select(hidden, labels, tensor(mb.TargetIndex()));
        Assert.That(sel.Count, Is.EqualTo(mb.TargetCount));
        // Boundaries in row 0 at t=3 (label ignored anyway) and t=7; row 1 has none.
        Assert.That(sel.Count, Is.EqualTo(13 - 1));
        var masked = labels.clone();
        masked[0, 7] = tensor(-100L);
        Assert.That(ChunkedCrossEntropy.SumLossBackwardOnDevice(hidden, sel, w, gradScale: 1).ToDouble(), Is.EqualTo(FullLoss(hidden, masked, w).ToDouble()).Within(1e-4));
    }

    [Test]
    public void TokenWeightsScaleEachTokenLoss()
    {
        using var scope = NewDisposeScope();
        var (hidden, labels, w) = Case();
        var weights = ones(2, 9);
        weights[1] = tensor(3f);                       // every token of row 1 counts three times
        using var sel = ChunkedCrossEntropy.Select(hidden, labels, LabelledPositions(labels), tokenWeights: weights);
        var row0 = FullLoss(hidden[..1], labels[..1], w).ToDouble();
        var row1 = FullLoss(hidden[1..], labels[1..], w).ToDouble();
        Assert.That(ChunkedCrossEntropy.SumLossBackwardOnDevice(hidden, sel, w, gradScale: 1, chunkRows: 3).ToDouble(), Is.EqualTo(row0 + 3 * row1).Within(1e-3));
    }

    /// <summary>The chosen chunk: on the CPU the most rows whose fp32 logits fit 32 MiB (2^25 / (4·V)), at most 1024,
    /// and 1024 where fewer than 64 would fit; a requested size wins.</summary>
    [TestCase(32_000, 262)]        // 262·32,000·4 = 33,536,000 ≤ 33,554,432 < 263·32,000·4
    [TestCase(131_072, 64)]        // exactly 64 rows fit
    [TestCase(131_073, 1024)]      // 63 would fit: not worth re-reading the head
    [TestCase(248_320, 1024)]      // Qwen3.5's vocabulary
    [TestCase(1_000, 1024)]        // everything fits: capped
    public void ChunkRowsFollowTheCpuHeapLimit(int vocab, int expected)
    {
        using var w = empty(vocab, 1);
        Assert.That(ChunkedCrossEntropy.RowsPerChunk(ChunkedCrossEntropy.AutoChunkRows, w), Is.EqualTo(expected));
        Assert.That(ChunkedCrossEntropy.RowsPerChunk(5, w), Is.EqualTo(5));
    }
}
