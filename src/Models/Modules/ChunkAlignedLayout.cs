using static TorchSharp.torch;

namespace Qwen35.Models.Modules;

/// <summary>
/// A re-layout of packed rows for the chunked delta rule in which every document starts on a chunk boundary: each
/// document is followed by zeros up to a multiple of the chunk size (q = k = v = 0, β = 0, g = 0, exactly the padding
/// it gets when run alone), and the rows are padded with zeros to one common length. Then no chunk mixes documents
/// and every state reset falls on a chunk boundary, so <see cref="GatedDeltaRule.Chunked"/> computes each document
/// with the same chunk decomposition, hence the same fp32 rounding, as when it runs alone (see docs/deltanet.md).
/// <para>
/// Built once per forward on the host from the document starts of <see cref="PackedDocuments"/> (no device sync) and shared by
/// all DeltaNet layers. The moves are <c>index_select</c>s (differentiable; their backward is an index_add), never
/// writes into slices. The tensors belong to the dispose scope that was current when <see cref="Create"/> ran.
/// </para>
/// </summary>
public sealed class ChunkAlignedLayout
{
    /// <summary>Rows B and packed length T the layout was built for.</summary>
    public long Rows { get; }
    public long Length { get; }
    /// <summary>Chunk size C the documents are aligned to.</summary>
    public int ChunkSize { get; }
    /// <summary>Zeros before every document but a row's first, on top of the alignment.</summary>
    public int Gap { get; }
    /// <summary>Aligned length per row (a multiple of C, the longest row's aligned length).</summary>
    public long PaddedLength { get; }
    /// <summary>int64 [B·Tpad]: for each aligned slot, its packed flat index b·T + t, or B·T (a zero row) for padding.</summary>
    public Tensor ToAlignedIndex { get; }
    /// <summary>int64 [B·T]: for each packed token, the flat index b·Tpad + slot of its aligned position.</summary>
    public Tensor FromAlignedIndex { get; }
    /// <summary>fp32 [B, Tpad/C]: 0 at the first chunk of every document after a row's first (the state reset), else 1.</summary>
    public Tensor ChunkKeep { get; }

    ChunkAlignedLayout(long rows, long length, int chunkSize, int gap, long paddedLength, Tensor toAligned, Tensor fromAligned, Tensor keep)
    {
        Rows = rows; Length = length; ChunkSize = chunkSize; Gap = gap; PaddedLength = paddedLength;
        ToAlignedIndex = toAligned; FromAlignedIndex = fromAligned; ChunkKeep = keep;
    }

    /// <summary>
    /// Builds the layout for rows of length <paramref name="length"/> whose documents start at
    /// <paramref name="offsets"/> (per row, ascending, first 0; the last document runs to the end of the row).
    /// </summary>
    /// <param name="gap">zeros put before every document but a row's first, on top of the alignment: the causal conv
    /// uses chunk size 1 and gap K−1, so each document's conv window sees K−1 zeros before it, as when run alone.</param>
    public static ChunkAlignedLayout Create(IReadOnlyList<int[]> offsets, long length, int chunkSize, Device device, int gap = 0)
    {
        if (gap < 0) throw new ArgumentOutOfRangeException(nameof(gap), gap, "gap must be ≥ 0");
        if (chunkSize < 1) throw new ArgumentOutOfRangeException(nameof(chunkSize), chunkSize, "chunk size must be ≥ 1");
        long rows = offsets.Count, c = chunkSize;
        var aligned = new long[rows];
        for (var r = 0; r < rows; r++)
        {
            Validate(offsets[r], r, length);
            aligned[r] = AlignedLength(offsets[r], length, c, gap);
        }
        long padded = aligned.Length == 0 ? 0 : aligned.Max();
        long chunks = padded / c;

        var toAligned = new long[rows * padded];
        Array.Fill(toAligned, rows * length);   // the zero row appended after the packed tokens
        var fromAligned = new long[rows * length];
        var keep = new float[rows * chunks];
        Array.Fill(keep, 1f);
        for (var r = 0; r < rows; r++)
        {
            var o = offsets[r];
            long slot = 0;
            for (var d = 0; d < o.Length; d++)
            {
                long start = o[d], end = d + 1 < o.Length ? o[d + 1] : length;
                if (d > 0) slot = (slot + gap + c - 1) / c * c;
                if (d > 0) keep[r * chunks + slot / c] = 0f;
                for (var t = start; t < end; t++, slot++)
                {
                    toAligned[r * padded + slot] = r * length + t;
                    fromAligned[r * length + t] = r * padded + slot;
                }
            }
        }
        return new ChunkAlignedLayout(rows, length, chunkSize, gap, padded,
            tensor(toAligned, device: device), tensor(fromAligned, device: device),
            tensor(keep, [rows, chunks], device: device));
    }

    /// <summary>
    /// The aligned length of one row: each document rounded up to a multiple of <paramref name="chunkSize"/>. The
    /// overhead of the layout is this minus the packed length (at most C − 1 positions per document).
    /// </summary>
    public static long AlignedLength(int[] rowOffsets, long length, long chunkSize, int gap = 0)
    {
        long slot = 0;
        for (var d = 0; d < rowOffsets.Length; d++)
        {
            long end = d + 1 < rowOffsets.Length ? rowOffsets[d + 1] : length;
            if (d > 0) slot = (slot + gap + chunkSize - 1) / chunkSize * chunkSize;
            slot += end - rowOffsets[d];
        }
        return (slot + chunkSize - 1) / chunkSize * chunkSize;
    }

    /// <summary>[B, T, ...] packed → [B, Tpad, ...] aligned, zeros in the padding slots.</summary>
    public Tensor ToAligned(Tensor packed)
    {
        var rest = packed.shape.Skip(2).ToArray();
        var flat = packed.reshape([Rows * Length, .. rest]);
        // One zero row appended; padding slots select it, so they hold exact zeros (not x·0, which is NaN for inf).
        var withZero = cat([flat, zeros([1, .. rest], packed.dtype, packed.device)], 0);
        return withZero.index_select(0, ToAlignedIndex).reshape([Rows, PaddedLength, .. rest]);
    }

    /// <summary>[B, Tpad, ...] aligned → [B, T, ...] packed (the padding slots are dropped).</summary>
    public Tensor FromAligned(Tensor aligned)
    {
        var rest = aligned.shape.Skip(2).ToArray();
        return aligned.reshape([Rows * PaddedLength, .. rest]).index_select(0, FromAlignedIndex).reshape([Rows, Length, .. rest]);
    }

    static void Validate(int[] o, int row, long length)
    {
        if (o.Length == 0 || o[0] != 0) throw new ArgumentException($"document starts row {row}: must start with 0");
        for (var d = 0; d < o.Length; d++)
        {
            long end = d + 1 < o.Length ? o[d + 1] : length;
            if (end <= o[d] || end > length)
                throw new ArgumentException($"document starts row {row}: offsets [{string.Join(",", o)}] are not ascending within [0, {length})");
        }
    }
}
