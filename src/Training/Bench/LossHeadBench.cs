using System.Diagnostics;
using Qwen35.Training.Loop;
using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Training.Bench;

/// <summary>
/// The loss head alone (lm_head matmul + cross-entropy, forward and backward into the hidden rows) in three forms, one
/// chunk of all the rows, timed alternately in one process on the same inputs so that machine load hits all alike;
/// medians are reported (`trainer bench --loss-head N`, docs/performance.md):
/// <list type="bullet">
/// <item>composed: <c>logsumexp(logits) − gather(logits, target)</c> with autograd (before issue 15);</item>
/// <item>fused: libtorch's <c>cross_entropy</c> (reduction sum) with autograd (round 1);</item>
/// <item>written out: the training path, <see cref="ChunkedCrossEntropy.SumLossBackwardOnDevice"/> (round 2: the
/// gradient softmax − one-hot built in the logits' buffer).</item>
/// </list>
/// </summary>
public static class LossHeadBench
{
    public enum Form { Composed, Fused, WrittenOut }

    public sealed record Result(long Rows, long Hidden, long Vocab, IReadOnlyDictionary<Form, List<double>> Seconds,
        double MaxGradDiffComposed, double MaxGradDiffWrittenOut);

    public static Result Run(long rows, long hidden, long vocab, int repetitions, long seed = 0)
    {
        using var scope = NewDisposeScope();
        using var g = new Generator((ulong)seed);
        var h = randn(rows, hidden, generator: g);
        var w = randn(vocab, hidden, generator: g).mul(0.02);
        var t = randint(0, vocab, [rows], generator: g, dtype: ScalarType.Int64);

        Tensor Grad(Form form)
        {
            using var inner = NewDisposeScope();
            var leaf = h.detach().requires_grad_(true);
            if (form == Form.WrittenOut)
            {
                // One chunk of all the rows, as the other two forms: the chunk size is measured on its own.
                var selection = new ChunkedCrossEntropy.Selection(leaf.alias(), t.alias(), null);
                ChunkedCrossEntropy.SumLossBackwardOnDevice(leaf, selection, w, gradScale: 1, chunkRows: (int)rows);
            }
            else
            {
                var logits = nn.functional.linear(leaf, w);
                var loss = form == Form.Fused
                    ? nn.functional.cross_entropy(logits, t, reduction: nn.Reduction.Sum)
                    : logits.logsumexp(1).sub(logits.gather(1, t.unsqueeze(1)).squeeze(1)).sum();
                loss.backward();
            }
            return leaf.grad!.detach().clone().MoveToOuterDisposeScope();
        }
        var fusedGrad = Grad(Form.Fused);
        double MaxDiff(Form form) => (Grad(form) - fusedGrad).abs().max().item<float>();
        var (composedDiff, writtenOutDiff) = (MaxDiff(Form.Composed), MaxDiff(Form.WrittenOut));
        var forms = Enum.GetValues<Form>();
        var seconds = forms.ToDictionary(f => f, _ => new List<double>());
        for (var i = 0; i < repetitions; i++)
            foreach (var f in i % 2 == 0 ? forms : forms.Reverse())
            {
                var sw = Stopwatch.StartNew();
                Grad(f).Dispose();
                seconds[f].Add(sw.Elapsed.TotalSeconds);
            }
        return new Result(rows, hidden, vocab, seconds, composedDiff, writtenOutDiff);
    }
}
