namespace Qwen35.Data;

/// <summary>One example per row, right-padded to the longest (rounded up to a multiple): labels -100, attention 0.</summary>
public static class PaddingCollator
{
    public static Batch Collate(IReadOnlyList<TokenizedExample> examples, int padId, int padToMultipleOf = 1)
    {
        if (examples.Count == 0) throw new ArgumentException("cannot collate an empty batch", nameof(examples));
        var longest = examples.Max(e => e.Length);
        var multiple = Math.Max(1, padToMultipleOf);
        var length = (longest + multiple - 1) / multiple * multiple;
        return Batch.FromRows(examples.Select(e => (IReadOnlyList<TokenizedExample>)[e]).ToList(), length, padId, maskDocumentStarts: false);
    }
}
