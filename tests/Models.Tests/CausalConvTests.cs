using Qwen35.Models.Modules;
using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Models.Tests;

public class CausalConvTests
{
    const long Channels = 5, Kernel = 4;

    static (Tensor X, Tensor W) MakeInputs(long seed, long batch, long length)
    {
        var gen = new Generator((ulong)seed);
        return (randn(batch, Channels, length, generator: gen), randn(Channels, 1, Kernel, generator: gen));
    }

    static double MaxDiff(Tensor a, Tensor b) => (a - b).abs().max().ToDouble();

    [Test]
    public void MatchesTheDefiningSum()
    {
        // out[c,t] = Σ_j W[c,0,j] · x[c, t−(K−1)+j], zero before the sequence: computed with plain loops.
        using var scope = NewDisposeScope();
        var (x, w) = MakeInputs(1, 2, 7);
        var (y, _) = CausalConv.Forward(x, w);
        var xs = x.data<float>().ToArray();
        var ws = w.data<float>().ToArray();
        var ys = y.data<float>().ToArray();
        for (int b = 0; b < 2; b++)
        for (int c = 0; c < Channels; c++)
        for (int t = 0; t < 7; t++)
        {
            double sum = 0;
            for (int j = 0; j < Kernel; j++)
            {
                int src = t - (int)(Kernel - 1) + j;
                if (src >= 0) sum += ws[c * Kernel + j] * xs[(b * Channels + c) * 7 + src];
            }
            Assert.That(ys[(b * Channels + c) * 7 + t], Is.EqualTo(sum).Within(1e-5), $"b={b} c={c} t={t}");
        }
        // Without a state to hand on: the same output, bitwise.
        Assert.That(CausalConv.ForwardFresh(x, w).equal(y).all().ToBoolean(), Is.True);
    }

    [TestCase(2), TestCase(3), TestCase(4), TestCase(9)]
    public void ContinuationFromStateEqualsFullConv(int split)
    {
        // Includes a prefix shorter than K (the state is then left-padded with zeros) and single-token steps.
        using var scope = NewDisposeScope();
        var (x, w) = MakeInputs(2, 2, 13);
        var (full, fullState) = CausalConv.Forward(x, w);
        var (first, state) = CausalConv.Forward(x.narrow(2, 0, split), w);
        var (step, state2) = CausalConv.Forward(x.narrow(2, split, 1), w, convState: state);
        var (rest, state3) = CausalConv.Forward(x.narrow(2, split + 1, 12 - split), w, convState: state2);
        Assert.That(MaxDiff(cat([first, step, rest], 2), full), Is.LessThanOrEqualTo(1e-6));
        Assert.That(MaxDiff(state3, fullState), Is.EqualTo(0));
        Assert.That(MaxDiff(fullState, x.narrow(2, 13 - Kernel, Kernel)), Is.EqualTo(0), "state = last K raw inputs");
        if (split < Kernel)
        {
            Assert.That(state.narrow(2, 0, Kernel - split).abs().max().ToDouble(), Is.EqualTo(0), "zero left padding");
            Assert.That(MaxDiff(state.narrow(2, Kernel - split, split), x.narrow(2, 0, split)), Is.EqualTo(0));
        }
    }

    [Test]
    public void PackedLayoutEqualsSeparateConvs()
    {
        // Row 0: documents of 6, 2, 9 tokens; row 1: 1, 10, 6. A document shorter than K must not see the one before;
        // spread K−1 zeros apart, each document's conv is the computation it has alone (bitwise).
        using var scope = NewDisposeScope();
        int[][] splits = [[6, 2, 9], [1, 10, 6]];
        var (x, w) = MakeInputs(3, 2, 17);
        var layout = ChunkAlignedLayout.Create([[0, 6, 8], [0, 1, 11]], 17, 1, CPU, gap: (int)Kernel - 1);
        var packed = CausalConv.ForwardPacked(x, w, layout);
        for (int b = 0; b < 2; b++)
        {
            int at = 0;
            foreach (var n in splits[b])
            {
                var (alone, _) = CausalConv.Forward(x.narrow(0, b, 1).narrow(2, at, n), w);
                Assert.That(MaxDiff(packed.narrow(0, b, 1).narrow(2, at, n), alone), Is.EqualTo(0), $"row {b} doc at {at}");
                at += n;
            }
        }
        var (unpacked, _) = CausalConv.Forward(x, w);
        Assert.That(MaxDiff(packed.narrow(2, 6, 2), unpacked.narrow(2, 6, 2)), Is.GreaterThan(1e-3), "the layout does reset");
    }

    [Test]
    public void PackedLayoutMustMatchTheInputs()
    {
        using var scope = NewDisposeScope();
        var (x, w) = MakeInputs(4, 1, 10);
        var layout = ChunkAlignedLayout.Create([[0, 4]], 10, 1, CPU, gap: (int)Kernel - 1);
        Assert.That(CausalConv.ForwardPacked(x, w, layout).shape, Is.EqualTo(x.shape));
        Assert.Throws<ArgumentException>(() => CausalConv.ForwardPacked(x, w, ChunkAlignedLayout.Create([[0, 4]], 10, 1, CPU)));
        Assert.Throws<ArgumentException>(() => CausalConv.ForwardPacked(x.narrow(2, 0, 9), w, layout));
    }

    [Test]
    public void ComputesInTheWeightDtypeAndReturnsTheInputDtype()
    {
        using var scope = NewDisposeScope();
        var (x, w) = MakeInputs(5, 1, 6);
        var (y, state) = CausalConv.Forward(x.to(ScalarType.BFloat16), w.to(ScalarType.BFloat16));
        Assert.That(y.dtype, Is.EqualTo(ScalarType.BFloat16));
        Assert.That(state.dtype, Is.EqualTo(ScalarType.BFloat16));
        var (reference, _) = CausalConv.Forward(x, w);
        Assert.That(MaxDiff(y.to(ScalarType.Float32), reference), Is.LessThanOrEqualTo(0.1));
    }
}
