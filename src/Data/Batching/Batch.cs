namespace Qwen35.Data;

/// <summary>
/// A training batch as plain row-major arrays [Rows * Length] (Training turns them into int64 tensors [Rows, Length]),
/// and its documents described once: per row where each document starts and how many tokens are real. Everything
/// else (positions, attention, padding mask, the DeltaNet layouts, the loss's document boundaries, the category of a
/// token) is derived from that by its user.
/// </summary>
/// <param name="InputIds">Token ids; padding = the tokenizer's pad id.</param>
/// <param name="Labels">Aligned targets (label[t] is the target at t, -100 = none; padding -100). Training shifts once.</param>
/// <param name="DocumentStarts">Per row, the start index of each of its documents (ascending, first 0).</param>
/// <param name="RealLengths">Per row, the number of real tokens; the rest of the row is right padding.</param>
/// <param name="Categories">One entry per document of the batch, rows in order and documents in row order.</param>
public sealed record Batch(
    int Rows,
    int Length,
    long[] InputIds,
    long[] Labels,
    int[][] DocumentStarts,
    int[] RealLengths,
    string?[] Categories)
{
    /// <summary>True when some row holds more than one document (the model must reset attention/state per document).</summary>
    public bool IsPacked => DocumentStarts.Any(s => s.Length > 1);

    /// <summary>True when some row ends in padding.</summary>
    public bool HasPadding => RealLengths.Any(l => l < Length);

    /// <summary>Builds a batch from rows, each a list of documents laid end to end and right-padded to <paramref name="length"/>.</summary>
    /// <param name="maskDocumentStarts">Set the label of each document's first token to -100 (in a packed row the
    /// shifted loss would otherwise predict a document's first token from the previous document).</param>
    public static Batch FromRows(IReadOnlyList<IReadOnlyList<TokenizedExample>> rows, int length, int padId, bool maskDocumentStarts)
    {
        var n = rows.Count * length;
        var ids = new long[n];
        var labels = new long[n];
        var starts = new int[rows.Count][];
        var realLengths = new int[rows.Count];
        var categories = new List<string?>();
        for (var r = 0; r < rows.Count; r++)
        {
            var o = r * length;
            var t = 0;
            starts[r] = new int[Math.Max(1, rows[r].Count)];
            for (var d = 0; d < rows[r].Count; d++)
            {
                var ex = rows[r][d];
                if (t + ex.Length > length)
                    throw new ArgumentException($"row {r}: documents need {t + ex.Length} tokens but the row length is {length}");
                starts[r][d] = t;
                categories.Add(ex.Category);
                for (var k = 0; k < ex.Length; k++, t++)
                {
                    ids[o + t] = ex.InputIds[k];
                    labels[o + t] = maskDocumentStarts && k == 0 ? TokenizedExample.IgnoreIndex : ex.Labels[k];
                }
            }
            realLengths[r] = t;
            for (; t < length; t++)
            {
                ids[o + t] = padId;
                labels[o + t] = TokenizedExample.IgnoreIndex;
            }
        }
        return new Batch(rows.Count, length, ids, labels, starts, realLengths, categories.ToArray());
    }
}
