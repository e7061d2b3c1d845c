namespace Qwen35.Training.Dpo;

/// <summary>
/// The preference pairs of one micro-batch. Pair p's chosen sequence (prompt + chosen answer) is sequence 2p, its
/// rejected sequence 2p+1; both are documents of the same micro-batch (rows of their own, or packed with document
/// boundaries), and <see cref="SequenceIds"/> says which sequence each token belongs to, so the per-sequence sums of
/// completion-token log-probs come out of one forward of the whole micro-batch.
/// </summary>
/// <param name="SequenceIds">[Rows·Length] row-major like the micro-batch's ids: 2p or 2p+1, −1 for padding.</param>
/// <param name="PairIndex">per pair, its index in the dataset (the reference cache's order).</param>
/// <param name="ReferenceChosen">per pair, the reference model's summed completion log-prob of the chosen answer.</param>
/// <param name="ReferenceRejected">the same for the rejected answer.</param>
/// <param name="ChosenTokens">per pair, the completion tokens of the chosen answer (IPO's mean, the NLL term's mean).</param>
/// <param name="RejectedTokens">the same for the rejected answer.</param>
/// <param name="CategoryIds">per pair, the index of its category in the data's category list (−1: none).</param>
public sealed record PreferencePairs(
    long[] SequenceIds,
    int[] PairIndex,
    double[] ReferenceChosen,
    double[] ReferenceRejected,
    int[] ChosenTokens,
    int[] RejectedTokens,
    int[] CategoryIds)
{
    public int Count => PairIndex.Length;
}
