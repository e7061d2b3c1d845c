using Qwen35.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Training.Loop;

/// <summary>
/// Cross-entropy of a causal LM without ever building full-vocabulary logits for every token. Qwen3.5's vocabulary is
/// 248,320 entries, so fp32 logits cost ~1 MB per token (7.7 GB at 8K tokens); instead we
/// 1. shift ONCE: position t predicts label t+1 (labels arrive aligned with the input ids, label[t] = token t),
/// 2. keep only the trained positions before the lm_head matmul (<see cref="MicroBatch.TargetIndex"/>: label != -100
///    and not across a packed-document boundary, where the next document is not predictable);
/// 3. walk them in chunks (<see cref="RowsPerChunk"/>): logits = h·Wᵀ, upcast to fp32, token loss = logsumexp −
///    target logit; in training each chunk's gradient with respect to its rows is written out in the logits' own
///    buffer (<see cref="ChunkLossAndGradient"/>), for evaluation libtorch's cross-entropy gives the token losses.
/// The result is a SUM over trained tokens (optionally weighted per token); the caller divides by the token count of
/// the whole optimizer step, which is what makes gradient accumulation equal to one large batch.
/// </summary>
public static class ChunkedCrossEntropy
{
    /// <summary>A chunk size of 0: let <see cref="RowsPerChunk"/> choose by the head's vocabulary and device.</summary>
    public const int AutoChunkRows = 0;

    /// <summary>Largest block glibc's malloc reuses from its heap (its M_MMAP_THRESHOLD cannot exceed 32 MiB on 64-bit
    /// Linux): larger blocks are fresh mmaps, page-faulted and zeroed by the kernel on every allocation.</summary>
    const long CpuReusedBlockBytes = 32L << 20;

    /// <summary>
    /// Rows per chunk: <paramref name="requested"/> when positive, else chosen. On CUDA, 1024. On the CPU, the most
    /// rows whose fp32 logits [rows × vocab] stay within <see cref="CpuReusedBlockBytes"/>, at most 1024: the chunk's
    /// [rows × vocab] buffers are then served from the heap instead of fresh pages (before <c>HostMemory</c> kept freed
    /// pages for every size; the rule is kept, not re-measured since). At hidden 512 / vocabulary 32,000 / 511 rows
    /// that is 262 rows a chunk and a 25-30% faster training step (docs/performance.md, "The loss head's chunk size"). Where fewer than 64 rows fit
    /// (Qwen3.5's 248,320 entries: 33) the chunk stays at 1024: re-reading the whole head for every few rows would
    /// cost more than the page faults.
    /// </summary>
    public static int RowsPerChunk(int requested, Tensor lmHeadWeight)
    {
        if (requested > 0) return requested;
        const int Default = 1024, Fewest = 64;
        if (lmHeadWeight.device_type != DeviceType.CPU) return Default;
        var fit = CpuReusedBlockBytes / (lmHeadWeight.shape[0] * sizeof(float));
        return fit < Fewest ? Default : (int)Math.Min(fit, Default);
    }

    /// <summary>Trained positions after the shift: hidden rows [M,h], targets [M], optional weights [M] and group
    /// ids [M] (e.g. the category of each target, for per-category eval loss).</summary>
    public sealed record Selection(Tensor Hidden, Tensor Targets, Tensor? Weights, Tensor? Groups = null) : IDisposable
    {
        public long Count => Targets.shape[0];
        public void Dispose()
        {
            Hidden.Dispose();
            Targets.Dispose();
            Weights?.Dispose();
            Groups?.Dispose();
        }
    }

    /// <summary>
    /// Shifts labels once and selects the trained positions.
    /// hidden [B,T,h]; labels [B,T] int64 aligned with the inputs; tokenWeights [B,T] (weight of the token at each
    /// position, e.g. from its category) or null; groupIds [B,T] or null. A target's weight and group are those of the
    /// predicted token (position t+1).
    /// <para><paramref name="targetIndex"/> (int64 [M]): the flat indices into [B,T-1] of the trained positions, as
    /// the training data knows them (<see cref="MicroBatch.Tensors.TargetIndex"/>, computed on the host, document
    /// boundaries included). Finding them on the device would need <c>nonzero()</c>, whose data-dependent output size
    /// makes the host wait for the device, and a second description of the documents.</para>
    /// </summary>
    public static Selection Select(Tensor hidden, Tensor labels, Tensor targetIndex, Tensor? tokenWeights = null,
        Tensor? groupIds = null)
    {
        var h = hidden.size(-1);
        using var targets = labels[.., 1..];                        // [B,T-1]: what position t must predict
        using var index = targetIndex.alias();                      // [M] flat indices
        using var hFlat = hidden[.., ..^1, ..].reshape(-1, h);       // [B*(T-1),h]
        using var tFlat = targets.reshape(-1);
        Tensor? w = null;
        if (tokenWeights is not null)
        {
            using var wFlat = tokenWeights[.., 1..].reshape(-1);
            w = wFlat.index_select(0, index).to(ScalarType.Float32);
        }
        Tensor? g = null;
        if (groupIds is not null)
        {
            using var gFlat = groupIds[.., 1..].reshape(-1);
            g = gFlat.index_select(0, index);
        }
        return new Selection(hFlat.index_select(0, index), tFlat.index_select(0, index), w, g);
    }

    /// <summary>
    /// Sum of token losses over a selection, with its gradient times <paramref name="gradScale"/> back-propagated
    /// chunk by chunk: each chunk's logits are built, turned into the gradient of its selected hidden rows, and freed
    /// before the next, so peak memory is one chunk of logits. Then one backward through the model from the rows.
    /// <paramref name="hidden"/> must be the tensor the selection was taken from (it carries the model's graph).
    /// Returns the (unscaled) loss sum as a detached fp64 scalar on the hidden states' device (created in the
    /// caller's dispose scope), so a training step can add its micro-batch losses on the device and read them once,
    /// together with the gradient norm (no host sync per chunk or per micro-batch).
    /// </summary>
    public static Tensor SumLossBackwardOnDevice(Tensor hidden, Selection sel, Tensor lmHeadWeight, double gradScale, int chunkRows = AutoChunkRows)
    {
        chunkRows = RowsPerChunk(chunkRows, lmHeadWeight);
        var sum = zeros(1, dtype: ScalarType.Float64, device: sel.Hidden.device).squeeze(0);
        if (sel.Count == 0) return sum;
        var grads = new List<Tensor>();
        try
        {
            using (no_grad())
                for (long start = 0; start < sel.Count; start += chunkRows)
                {
                    var (loss, rowsGradient) = ChunkLossAndGradient(sel, lmHeadWeight, start, Math.Min(chunkRows, sel.Count - start), gradScale);
                    using (loss) sum.add_(loss);   // in place: sum belongs to the caller's scope
                    grads.Add(rowsGradient);
                }
            // Continue from the selected rows into the model (index_select's backward scatters into hidden).
            using var all = grads.Count == 1 ? grads[0].alias() : cat(grads, 0);
            using var hiddenGradient = all.to(sel.Hidden.dtype);
            sel.Hidden.backward([hiddenGradient]);
        }
        finally
        {
            foreach (var g in grads) g.Dispose();
        }
        return sum;
    }

    /// <summary>
    /// Loss sum (fp64 scalar) of rows [start, start+len) and its gradient × <paramref name="gradScale"/> with respect
    /// to those hidden rows, written out instead of recorded for autograd: one [len × vocab] fp32 buffer holds the
    /// logits, then (in place) the softmax, then softmax − one-hot, the gradient of the token loss
    /// logsumexp(z) − z_target with respect to the logits z; its product with the head is the rows' gradient. The
    /// autograd form (libtorch's cross_entropy, then backward) holds the logits, the log-softmax and the logits'
    /// gradient as three such buffers and makes about twice the passes over them (docs/performance.md, "The loss
    /// head"). A token weight w scales its loss and its gradient row. Call under no_grad.
    /// </summary>
    static (Tensor Loss, Tensor Gradient) ChunkLossAndGradient(Selection sel, Tensor weight, long start, long len, double gradScale)
    {
        using var scope = NewDisposeScope();
        var logits = ChunkLogits(sel, weight, start, len);                          // [c, V] fp32
        var targets = sel.Targets.narrow(0, start, len).unsqueeze(1);                 // [c, 1]
        var logSumExp = logits.logsumexp(1, keepdim: true);                           // [c, 1]
        var tokenLoss = (logSumExp - logits.gather(1, targets)).squeeze(1);           // [c]
        var rowWeights = sel.Weights?.narrow(0, start, len);
        var loss = (rowWeights is null ? tokenLoss.sum() : tokenLoss.mul(rowWeights).sum()).to(ScalarType.Float64);
        // d(logsumexp(z) − z_t)/dz = softmax(z) − e_t, built in the logits' buffer.
        var probabilities = logits.sub_(logSumExp).exp_();
        probabilities.scatter_add_(1, targets, full_like(targets, -1.0, dtype: ScalarType.Float32));
        var gradient = probabilities.InDtype(weight.dtype).mm(weight);                // [c, h]
        gradient = rowWeights is null ? gradient.mul_(gradScale) : gradient.mul_(rowWeights.mul(gradScale).unsqueeze(1).InDtype(gradient.dtype));
        return (loss.MoveToOuterDisposeScope(), gradient.MoveToOuterDisposeScope());
    }

    /// <summary>Unweighted loss of every selected token [M] (fp32), for evaluation; call under no_grad.</summary>
    public static Tensor TokenLosses(Selection sel, Tensor lmHeadWeight, int chunkRows = AutoChunkRows)
    {
        chunkRows = RowsPerChunk(chunkRows, lmHeadWeight);
        var unweighted = sel with { Weights = null };
        var parts = new List<Tensor>();
        for (long start = 0; start < sel.Count; start += chunkRows)
            parts.Add(ChunkTokenLoss(unweighted, lmHeadWeight, start, Math.Min(chunkRows, sel.Count - start)));
        return parts.Count == 0 ? zeros(0, device: sel.Hidden.device) : cat(parts, 0);
    }

    /// <summary>Per-token (weighted) losses of rows [start, start+len) [len], fp32.</summary>
    static Tensor ChunkTokenLoss(Selection sel, Tensor weight, long start, long len)
    {
        using var scope = NewDisposeScope();
        var logits = ChunkLogits(sel, weight, start, len);
        var tokenLoss = nn.functional.cross_entropy(logits, sel.Targets.narrow(0, start, len), reduction: nn.Reduction.None);   // [c]
        if (sel.Weights is not null) tokenLoss = tokenLoss.mul(sel.Weights.narrow(0, start, len));
        return tokenLoss.MoveToOuterDisposeScope();
    }

    /// <summary>fp32 logits [c,V] of rows [start, start+len). The matmul runs in the weight's dtype (bf16 on GPU: a
    /// full fp32 copy of a 248K×5K head would cost 5 GB); the reduction over the vocabulary runs in fp32, like HF's
    /// upcast of logits before the loss. With an fp32 head both casts are no-ops (no copy).</summary>
    static Tensor ChunkLogits(Selection sel, Tensor weight, long start, long len)
    {
        var h = sel.Hidden.narrow(0, start, len);                    // [c,h]
        return nn.functional.linear(h.InDtype(weight.dtype), weight).InDtype(ScalarType.Float32);
    }
}
