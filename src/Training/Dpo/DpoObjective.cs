using Qwen35.Models;
using Qwen35.Training.Loop;
using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Training.Dpo;

/// <summary>
/// DPO / IPO (+ the optional NLL term) as a <see cref="ITrainingObjective"/>: a micro-batch holds whole pairs (both
/// sequences of a pair in one forward), a step's loss is the mean over its pairs, and the reference log-probs come
/// with the batch (computed once before training, <see cref="ReferenceLogps"/>).
/// <para>The backward reuses the chunked cross-entropy: the loss is a function of the per-sequence sums s of
/// completion-token log-probs only, so after one no-grad chunked pass gives s, autograd on the tiny [2P] vector gives
/// ∂L/∂s, and the chunked backward of Σ_t w_t·CE_t with w_t = −∂L/∂s(t) (CE_t = −log p_t) back-propagates exactly
/// ∂L into the model. The logits of all tokens never exist at once, as in SFT; the price is a second lm_head matmul
/// over the completion tokens.</para>
/// </summary>
public sealed class DpoObjective(DpoOptions options) : ITrainingObjective
{
    public DpoOptions Options { get; } = options;

    public IReadOnlyList<string> MetricNames { get; } = DpoLoss.AllNames(options).Skip(1).ToList();

    public double Weight(MicroBatch batch) => Pairs(batch).Count;

    static PreferencePairs Pairs(MicroBatch batch) =>
        batch.Pairs ?? throw new InvalidOperationException("a DPO micro-batch needs its preference pairs (MicroBatch.Pairs)");

    public Tensor ForwardBackward(Qwen35ForCausalLM model, MicroBatch batch, MicroBatch.Tensors tensors, double gradScale,
        TrainingForward forward, int chunkRows)
    {
        var pairs = Pairs(batch);
        var device = model.LmHeadWeight.device;
        using var scope = NewDisposeScope();
        var sequences = tensor(pairs.SequenceIds, [batch.Rows, batch.Length], device: device);
        var result = model.ForwardBackward(tensors.Inputs, hidden =>
        {
            using var sel = ChunkedCrossEntropy.Select(hidden, tensors.Labels, tensors.TargetIndex, null, sequences);
            Tensor sums;
            using (no_grad()) sums = SequenceSums(sel, model.LmHeadWeight, 2 * pairs.Count, chunkRows);
            using var leaf = sums.detach().requires_grad_(true);
            var terms = Terms(leaf, pairs, device);
            terms.Losses.sum().backward();
            // Token weight = −∂L/∂s of its sequence: Σ_t w_t·CE_t has the gradient of L with respect to the model.
            var weights = leaf.grad!.index_select(0, sel.Groups!).neg().to(ScalarType.Float32);
            ChunkedCrossEntropy.SumLossBackwardOnDevice(hidden, sel with { Weights = weights }, model.LmHeadWeight, gradScale, chunkRows);
            return terms.Metrics().sum(0, keepdim: false);   // (a bare sum(0) would bind to sum(ScalarType) and mean uint8)
        }, forward);
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>Per sequence the sum of its completion tokens' log-probs [n] (fp64), from a selection whose groups are
    /// sequence ids; call under no_grad.</summary>
    static Tensor SequenceSums(ChunkedCrossEntropy.Selection sel, Tensor lmHead, int sequences, int chunkRows)
    {
        var logps = ChunkedCrossEntropy.TokenLosses(sel, lmHead, chunkRows).to(ScalarType.Float64).neg();
        return zeros(sequences, dtype: ScalarType.Float64, device: logps.device).scatter_add(0, sel.Groups!, logps);
    }

    DpoLoss.Terms Terms(Tensor sums, PreferencePairs pairs, Device device)
    {
        var evens = arange(0, 2 * pairs.Count, 2, dtype: ScalarType.Int64, device: device);
        Tensor F(double[] a) => tensor(a, dtype: ScalarType.Float64, device: device);
        Tensor N(int[] a) => tensor(a.Select(x => (double)x).ToArray(), dtype: ScalarType.Float64, device: device);
        return DpoLoss.Compute(Options, sums.index_select(0, evens), sums.index_select(0, evens + 1),
            F(pairs.ReferenceChosen), F(pairs.ReferenceRejected), N(pairs.ChosenTokens), N(pairs.RejectedTokens));
    }

    /// <summary>
    /// The policy's summed completion log-probs of each pair of a micro-batch (chosen, rejected), from one no-grad
    /// forward in eval mode (no dropout): the reference pass, evaluation, and the tests' check of the packed path.
    /// </summary>
    public static (double[] Chosen, double[] Rejected) SequenceLogps(Qwen35ForCausalLM model, MicroBatch batch, int chunkRows = ChunkedCrossEntropy.AutoChunkRows)
    {
        var pairs = Pairs(batch);
        var wasTraining = model.training;
        model.eval();
        try
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var device = model.LmHeadWeight.device;
            var t = batch.ToTensors(device);
            var hidden = model.Forward(t.Inputs);
            using var sel = ChunkedCrossEntropy.Select(hidden, t.Labels, t.TargetIndex, null,
                tensor(pairs.SequenceIds, [batch.Rows, batch.Length], device: device));
            var sums = SequenceSums(sel, model.LmHeadWeight, 2 * pairs.Count, chunkRows).cpu().data<double>().ToArray();
            return (sums.Where((_, i) => i % 2 == 0).ToArray(), sums.Where((_, i) => i % 2 == 1).ToArray());
        }
        finally
        {
            model.train(wasTraining);
        }
    }

    /// <summary>Means over pairs of the loss and TRL's metrics, overall and per category (no gradients, no dropout).</summary>
    /// <remarks>Not sharded: on several processes every rank evaluates every pair (the same numbers on each).</remarks>
    public EvalResult Evaluate(Qwen35ForCausalLM model, IReadOnlyList<MicroBatch> batches, IReadOnlyList<string> categories, int chunkRows,
        Qwen35.Distributed.ICommunicator? comm = null)
    {
        var names = DpoLoss.AllNames(Options);
        var rows = new List<(int Category, double[] Values)>();
        long tokens = 0;
        foreach (var batch in batches)
        {
            var pairs = Pairs(batch);
            var (chosen, rejected) = SequenceLogps(model, batch, chunkRows);
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var seq = new double[2 * pairs.Count];
            for (var p = 0; p < pairs.Count; p++) (seq[2 * p], seq[2 * p + 1]) = (chosen[p], rejected[p]);
            var metrics = Terms(tensor(seq, dtype: ScalarType.Float64), pairs, CPU).Metrics().data<double>().ToArray();
            for (var p = 0; p < pairs.Count; p++)
                rows.Add((pairs.CategoryIds[p], metrics.Skip(p * names.Count).Take(names.Count).ToArray()));
            tokens += pairs.ChosenTokens.Sum() + pairs.RejectedTokens.Sum();
        }
        Dictionary<string, double> Mean(IEnumerable<double[]> values)
        {
            var list = values.ToList();
            return names.Select((n, k) => (n, list.Count == 0 ? double.NaN : list.Average(v => v[k]))).ToDictionary(x => x.n, x => x.Item2);
        }
        var overall = Mean(rows.Select(r => r.Values));
        var byCategory = new SortedDictionary<string, IReadOnlyDictionary<string, double>>(StringComparer.Ordinal);
        foreach (var g in rows.Where(r => r.Category >= 0 && r.Category < categories.Count).GroupBy(r => r.Category))
            byCategory[categories[g.Key]] = Mean(g.Select(r => r.Values));
        var loss = overall["loss"];
        overall.Remove("loss");
        return new EvalResult(loss, new SortedDictionary<string, double>(byCategory.ToDictionary(kv => kv.Key, kv => kv.Value["loss"]), StringComparer.Ordinal),
            tokens, overall, byCategory);
    }
}
