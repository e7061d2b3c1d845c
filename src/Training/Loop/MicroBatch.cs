using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Training.Loop;

/// <summary>
/// One micro-batch as the loop needs it: row-major [Rows·Length] arrays (labels ALIGNED with input ids, -100 = not
/// trained; the loss shifts once), optional packing/padding information, and per-token category and weight. The
/// number of trained targets is counted here, on the host, before any forward pass, because the loss of a whole
/// optimizer step is normalised by the targets of ALL its micro-batches.
/// </summary>
public sealed record MicroBatch
{
    public required int Rows { get; init; }
    public required int Length { get; init; }
    public required long[] InputIds { get; init; }
    public required long[] Labels { get; init; }
    /// <summary>Packed rows: document index of each token in its row; null = one document per row.</summary>
    public long[]? SequenceIds { get; init; }
    /// <summary>1 = real token, 0 = padding; null = no padding.</summary>
    public long[]? AttentionMask { get; init; }
    /// <summary>Category index of each token's document (-1 for padding / unknown); used for per-category eval loss.</summary>
    public long[]? CategoryIds { get; init; }
    /// <summary>Loss weight of each token (category weights); null = all 1.</summary>
    public float[]? TokenWeights { get; init; }

    /// <summary>Positions t whose target label[t+1] is trained and lies in the same document: what the loss sums over.</summary>
    public long TargetCount => Targets().Count();

    /// <summary>Sum of the weights of the trained targets (= <see cref="TargetCount"/> without category weights).</summary>
    public double TargetWeight => TokenWeights is null ? TargetCount : Targets().Sum(i => (double)TokenWeights[i + 1]);

    /// <summary>Flat indices t of trained positions, the same selection ChunkedCrossEntropy.Select makes on tensors.</summary>
    IEnumerable<int> Targets()
    {
        for (var r = 0; r < Rows; r++)
            for (var t = 0; t < Length - 1; t++)
            {
                var i = r * Length + t;
                if (Labels[i + 1] == ChunkedCrossEntropy.IgnoreIndex) continue;
                if (SequenceIds is not null && SequenceIds[i + 1] != SequenceIds[i]) continue;
                yield return i;
            }
    }

    /// <summary>
    /// The trained positions as flat indices into the shifted [Rows, Length−1] grid (what
    /// <see cref="ChunkedCrossEntropy.Select"/> would find with <c>nonzero()</c>): computed here from the host arrays so
    /// the loss never waits for the device to learn how many targets there are.
    /// </summary>
    public long[] TargetIndex() => Targets().Select(i => (long)(i - i / Length)).ToArray();

    /// <summary>The tensors of this micro-batch on a device (created in the caller's dispose scope).</summary>
    public Tensors ToTensors(Device device)
    {
        Tensor T(long[] a) => tensor(a, [Rows, Length], device: device);
        return new Tensors(T(InputIds), T(Labels),
            SequenceIds is null ? null : T(SequenceIds),
            AttentionMask is null ? null : T(AttentionMask),
            CategoryIds is null ? null : T(CategoryIds),
            TokenWeights is null ? null : tensor(TokenWeights, [Rows, Length], device: device),
            tensor(TargetIndex(), device: device),
            DocumentOffsets());
    }

    /// <summary>
    /// Packed rows: per row, the index where each document starts (host side, for
    /// <see cref="Models.ModelInputs.DocumentOffsets"/>), or null when the rows are not packed or some padding is not
    /// at the end of its row (then only the block-diagonal mask is exact).
    /// </summary>
    public IReadOnlyList<int[]>? DocumentOffsets()
    {
        if (SequenceIds is null) return null;
        var rows = new int[Rows][];
        for (var r = 0; r < Rows; r++)
        {
            var o = r * Length;
            var starts = new List<int> { 0 };
            var padded = false;
            for (var t = 0; t < Length; t++)
            {
                var real = AttentionMask is null || AttentionMask[o + t] != 0;
                if (real && padded) return null;   // a real token after padding: not right padding
                padded |= !real;
                if (t > 0 && SequenceIds[o + t] != SequenceIds[o + t - 1]) starts.Add(t);
            }
            rows[r] = starts.ToArray();
        }
        return rows;
    }

    /// <param name="TargetIndex">int64 [M]: <see cref="MicroBatch.TargetIndex"/> on the device.</param>
    /// <param name="DocumentOffsets">host-side <see cref="MicroBatch.DocumentOffsets"/>.</param>
    public sealed record Tensors(Tensor InputIds, Tensor Labels, Tensor? SequenceIds, Tensor? AttentionMask,
        Tensor? CategoryIds, Tensor? TokenWeights, Tensor? TargetIndex = null, IReadOnlyList<int[]>? DocumentOffsets = null);
}
