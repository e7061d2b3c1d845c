namespace Qwen35.Data;

/// <summary>
/// A training batch as plain row-major arrays [Rows * Length] (Training turns them into int64 tensors [Rows, Length]).
/// </summary>
/// <param name="InputIds">Token ids; padding = the tokenizer's pad id.</param>
/// <param name="Labels">Aligned targets (label[t] is the target at t, -100 = none; padding -100). Training shifts once.</param>
/// <param name="PositionIds">0.. per document; padding continues counting after the row's last document.</param>
/// <param name="SequenceIds">Document index within its row (0,0,0,1,1,2,...); padding keeps the last document's index.</param>
/// <param name="AttentionMask">1 = real token, 0 = padding (right padding).</param>
/// <param name="Categories">One entry per document of the batch (DocumentIndex points here).</param>
/// <param name="DocumentIndex">Per token: index into <paramref name="Categories"/>, -1 for padding.</param>
public sealed record Batch(
    int Rows,
    int Length,
    long[] InputIds,
    long[] Labels,
    long[] PositionIds,
    long[] SequenceIds,
    long[] AttentionMask,
    string?[] Categories,
    int[] DocumentIndex)
{
    /// <summary>True when some row holds more than one document (the model must reset attention/state per document).</summary>
    public bool IsPacked
    {
        get
        {
            for (var i = 0; i < SequenceIds.Length; i++) if (SequenceIds[i] != 0) return true;
            return false;
        }
    }

    /// <summary>Positions with a target (what the loss is normalised by).</summary>
    public int TrainedTokens => Labels.Count(l => l != TokenizedExample.IgnoreIndex);

    /// <summary>Real (non-padding) tokens.</summary>
    public int RealTokens => (int)AttentionMask.Sum();

    /// <summary>Builds a batch from rows, each a list of documents laid end to end and right-padded to <paramref name="length"/>.</summary>
    /// <param name="maskDocumentStarts">Set the label of each document's first token to -100 (in a packed row the
    /// shifted loss would otherwise predict a document's first token from the previous document).</param>
    public static Batch FromRows(IReadOnlyList<IReadOnlyList<TokenizedExample>> rows, int length, int padId, bool maskDocumentStarts)
    {
        var n = rows.Count * length;
        var ids = new long[n];
        var labels = new long[n];
        var pos = new long[n];
        var seq = new long[n];
        var attn = new long[n];
        var docIndex = new int[n];
        var categories = new List<string?>();
        for (var r = 0; r < rows.Count; r++)
        {
            var o = r * length;
            var t = 0;
            for (var d = 0; d < rows[r].Count; d++)
            {
                var ex = rows[r][d];
                if (t + ex.Length > length)
                    throw new ArgumentException($"row {r}: documents need {t + ex.Length} tokens but the row length is {length}");
                var doc = categories.Count;
                categories.Add(ex.Category);
                for (var k = 0; k < ex.Length; k++, t++)
                {
                    ids[o + t] = ex.InputIds[k];
                    labels[o + t] = maskDocumentStarts && k == 0 ? TokenizedExample.IgnoreIndex : ex.Labels[k];
                    pos[o + t] = k;
                    seq[o + t] = d;
                    attn[o + t] = 1;
                    docIndex[o + t] = doc;
                }
            }
            var lastSeq = Math.Max(0, rows[r].Count - 1);
            var nextPos = t > 0 ? pos[o + t - 1] + 1 : 0;
            for (; t < length; t++)
            {
                ids[o + t] = padId;
                labels[o + t] = TokenizedExample.IgnoreIndex;
                pos[o + t] = nextPos++;
                seq[o + t] = lastSeq;
                attn[o + t] = 0;
                docIndex[o + t] = -1;
            }
        }
        return new Batch(rows.Count, length, ids, labels, pos, seq, attn, categories.ToArray(), docIndex);
    }
}
