namespace Qwen35.Data;

/// <summary>
/// One tokenized training example. <see cref="Labels"/> is ALIGNED with <see cref="InputIds"/>: label[t] is the
/// target at position t (the token itself, or the RTO refusal id), -100 where not trained. The loss shifts by one,
/// exactly once, in Training.
/// </summary>
public sealed record TokenizedExample(int[] InputIds, int[] Labels, string? Category, string? Id)
{
    /// <summary>The label value of positions that are not trained.</summary>
    public const int IgnoreIndex = -100;

    public int Length => InputIds.Length;

    /// <summary>Number of positions with a target.</summary>
    public int TrainedTokens => Labels.Count(l => l != IgnoreIndex);
}
