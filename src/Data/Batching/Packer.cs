namespace Qwen35.Data;

/// <summary>
/// Packs several documents into fixed-length rows (token budget per row) so little compute goes to padding.
/// Documents are never split; the batch records where each starts (<see cref="Batch.DocumentStarts"/>), from which
/// the model derives per-document positions, attention and DeltaNet state resets that keep documents independent.
/// </summary>
public static class Packer
{
    /// <summary>
    /// Greedy first-fit: documents are taken in the given order and each goes into the first open row with room,
    /// else a new row. Returns, per row, the indices of its documents. Throws if a document exceeds the budget
    /// (truncate or drop over-long examples first).
    /// </summary>
    public static List<List<int>> PlanRows(IReadOnlyList<int> lengths, IReadOnlyList<int> order, int budget)
    {
        if (budget <= 0) throw new ArgumentOutOfRangeException(nameof(budget), "the row token budget must be positive");
        var rows = new List<List<int>>();
        var free = new List<int>();
        foreach (var i in order)
        {
            var len = lengths[i];
            if (len > budget) throw new ArgumentException($"example {i} has {len} tokens, more than the row budget {budget}");
            var placed = false;
            for (var r = 0; r < rows.Count && !placed; r++)
            {
                if (free[r] < len) continue;
                rows[r].Add(i);
                free[r] -= len;
                placed = true;
            }
            if (placed) continue;
            rows.Add([i]);
            free.Add(budget - len);
        }
        return rows;
    }

    /// <summary>A batch of packed rows, each exactly <paramref name="budget"/> tokens long.</summary>
    public static Batch Collate(IReadOnlyList<IReadOnlyList<TokenizedExample>> rows, int budget, int padId) =>
        Batch.FromRows(rows, budget, padId, maskDocumentStarts: true);
}
