namespace Qwen35.Data;

/// <summary>One example per row, right-padded to the longest: labels -100 on the padding.</summary>
public static class PaddingCollator
{
    public static Batch Collate(IReadOnlyList<TokenizedExample> examples, int padId)
    {
        if (examples.Count == 0) throw new ArgumentException("cannot collate an empty batch", nameof(examples));
        var length = examples.Max(e => e.Length);
        return Batch.FromRows(examples.Select(e => (IReadOnlyList<TokenizedExample>)[e]).ToList(), length, padId, maskDocumentStarts: false);
    }
}
