using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Training.Bench;

/// <summary>
/// The loss head alone (lm_head matmul + cross-entropy, forward and backward into the hidden rows), in the form the
/// chunked loss used before issue 15 (<c>logsumexp(logits) − gather(logits, target)</c>) and the form it uses now
/// (libtorch's fused <c>cross_entropy</c>, reduction sum), timed alternately in one process on the same inputs so that
/// machine load hits both alike; medians are reported (`trainer bench --loss-head N`, docs/performance.md).
/// </summary>
public static class LossHeadBench
{
    public sealed record Result(long Rows, long Hidden, long Vocab, IReadOnlyList<double> ComposedSeconds, IReadOnlyList<double> FusedSeconds,
        double MaxGradDiff);

    public static Result Run(long rows, long hidden, long vocab, int repetitions, long seed = 0)
    {
        using var scope = NewDisposeScope();
        using var g = new Generator((ulong)seed);
        var h = randn(rows, hidden, generator: g);
        var w = randn(vocab, hidden, generator: g).mul(0.02);
        var t = randint(0, vocab, [rows], generator: g, dtype: ScalarType.Int64);

        Tensor Grad(bool fused)
        {
            using var inner = NewDisposeScope();
            var leaf = h.detach().requires_grad_(true);
            var logits = nn.functional.linear(leaf, w);
            var loss = fused
                ? nn.functional.cross_entropy(logits, t, reduction: nn.Reduction.Sum)
                : logits.logsumexp(1).sub(logits.gather(1, t.unsqueeze(1)).squeeze(1)).sum();
            loss.backward();
            return leaf.grad!.detach().clone().MoveToOuterDisposeScope();
        }
        var maxDiff = (Grad(true) - Grad(false)).abs().max().item<float>();
        var composed = new List<double>();
        var fused = new List<double>();
        for (var i = 0; i < repetitions; i++)
            foreach (var f in i % 2 == 0 ? new[] { false, true } : [true, false])
            {
                var sw = Stopwatch.StartNew();
                Grad(f).Dispose();
                (f ? fused : composed).Add(sw.Elapsed.TotalSeconds);
            }
        return new Result(rows, hidden, vocab, composed, fused, maxDiff);
    }
}
