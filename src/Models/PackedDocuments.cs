namespace Qwen35.Models;

/// <summary>
/// The one description of a batch's documents, on the host: per row, the index where each document starts
/// (ascending, first 0) and the row's real length (the tokens after it are right padding). Rows of one document
/// with padding are a padded batch; rows of several documents are packed rows. The model derives every layout it
/// needs from this, once per forward (<see cref="Modules.Qwen35TextModel"/>): RoPE positions restarting per
/// document, per-document attention spans (or the block-diagonal mask), the chunk-aligned delta-rule and conv
/// layouts, and the padding mask; the training loss derives its document boundaries from it too
/// (<see cref="IsDocumentStart"/>). Padding belongs to the row's last document for every layout: it comes after all
/// real tokens, so no real token sees it.
/// </summary>
/// <param name="Starts">per row, the start index of each document.</param>
/// <param name="Lengths">per row, the number of real tokens (the rest of the row is padding).</param>
public sealed record PackedDocuments(IReadOnlyList<int[]> Starts, IReadOnlyList<int> Lengths)
{
    /// <summary>
    /// Full attention per document (SDPA with the causal flag per document, which lets CUDA use the flash kernel).
    /// False, or a row with more than <see cref="Modules.Qwen35Attention.MaxDocumentsPerRowForSplit"/> documents,
    /// uses one [T, T] block-diagonal mask instead (same outputs for real tokens; verify compares the two).
    /// </summary>
    public bool PerDocumentAttention { get; init; } = true;

    public int Rows => Starts.Count;

    /// <summary>True when some row holds more than one document (attention and DeltaNet state reset per document).</summary>
    public bool IsPacked => Starts.Any(s => s.Length > 1);

    /// <summary>True when some row of length <paramref name="length"/> ends in padding.</summary>
    public bool HasPadding(long length) => Lengths.Any(l => l < length);

    /// <summary>Real (non-padding) tokens of all rows.</summary>
    public long RealTokens => Lengths.Sum(l => (long)l);

    /// <summary>True when a document other than the row's first starts at <paramref name="t"/>.</summary>
    public bool IsDocumentStart(int row, int t) => t > 0 && Array.BinarySearch(Starts[row], t) >= 0;

    /// <summary>Throws <see cref="ArgumentException"/> unless this describes <paramref name="rows"/> rows of
    /// <paramref name="length"/> tokens: starts ascending from 0, every document non-empty and real.</summary>
    public void Validate(long rows, long length)
    {
        if (Starts.Count != rows || Lengths.Count != rows)
            throw new ArgumentException($"PackedDocuments has {Starts.Count} rows of starts and {Lengths.Count} lengths, the batch has {rows} rows");
        for (var r = 0; r < rows; r++)
        {
            var o = Starts[r];
            var real = Lengths[r];
            if (real < 0 || real > length) throw new ArgumentException($"PackedDocuments row {r}: real length {real} is not within [0, {length}]");
            if (o.Length == 0 || o[0] != 0) throw new ArgumentException($"PackedDocuments row {r}: starts must begin with 0");
            for (var d = 1; d < o.Length; d++)
                if (o[d] <= o[d - 1] || o[d] >= real)
                    throw new ArgumentException($"PackedDocuments row {r}: starts [{string.Join(",", o)}] are not ascending within the {real} real tokens");
        }
    }

    /// <summary>int64 [B·T]: 1 for real tokens, 0 for padding.</summary>
    public long[] Mask(long length)
    {
        var mask = new long[Rows * length];
        for (var r = 0; r < Rows; r++)
            for (var t = 0; t < Lengths[r]; t++) mask[r * length + t] = 1;
        return mask;
    }

    /// <summary>int64 [B·T]: the position of each token in its document (padding continues the last document).</summary>
    public long[] Positions(long length) => PerToken(length, (start, _, t) => t - start);

    /// <summary>int64 [B·T]: the index of each token's document in its row (padding: the last document's).</summary>
    public long[] DocumentIds(long length) => PerToken(length, (_, d, _) => d);

    /// <summary>Per row, the (start, length) of each document, the last running to the end of the row (padding
    /// included).</summary>
    public (int Start, int Length)[][] Spans(long length) => Starts
        .Select(o => o.Select((s, d) => (s, (d + 1 < o.Length ? o[d + 1] : (int)length) - s)).ToArray())
        .ToArray();

    long[] PerToken(long length, Func<long, long, long, long> value)
    {
        var result = new long[Rows * length];
        for (var r = 0; r < Rows; r++)
        {
            var o = Starts[r];
            for (var d = 0; d < o.Length; d++)
            {
                long end = d + 1 < o.Length ? o[d + 1] : length;
                for (long t = o[d]; t < end; t++) result[r * length + t] = value(o[d], d, t);
            }
        }
        return result;
    }
}
