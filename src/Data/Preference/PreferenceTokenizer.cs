using System.Collections;

namespace Qwen35.Data.Preference;

/// <summary>What tokenizing a preference dataset kept, cut and dropped.</summary>
public sealed class PreferenceTokenizeReport
{
    public int Pairs { get; internal set; }
    public int Kept { get; internal set; }

    /// <summary>Pairs whose prompt lost tokens on the left to fit max_length.</summary>
    public int Truncated { get; internal set; }

    /// <summary>Pairs left out as bad (a completion too long for max_length, prompts that differ between the two sides).</summary>
    public long Dropped { get; internal set; }

    /// <summary>The first dropped pairs with their reasons.</summary>
    public List<DatasetRowError> Errors { get; } = [];

    public SortedDictionary<string, int> KeptPerCategory { get; } = new(StringComparer.Ordinal);

    /// <summary>Token totals over the kept pairs (after truncation).</summary>
    public long PromptTokens { get; internal set; }
    public long ChosenTokens { get; internal set; }
    public long RejectedTokens { get; internal set; }

    /// <summary>The longest prompt + completion sequence kept.</summary>
    public int LongestSequence { get; internal set; }
}

/// <summary>Tokenized pairs ready for the DPO loop, with the report of what was cut or dropped.</summary>
public sealed class PreferenceDataset : IReadOnlyList<TokenizedPair>
{
    public required IReadOnlyList<TokenizedPair> Pairs { get; init; }
    public required PreferenceTokenizeReport Report { get; init; }

    public int Count => Pairs.Count;
    public TokenizedPair this[int index] => Pairs[index];
    public IEnumerator<TokenizedPair> GetEnumerator() => Pairs.GetEnumerator();
    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}

/// <summary>
/// Turns preference pairs into token ids exactly as SFT would train them: each side (prompt + chosen, prompt +
/// rejected) is rendered as one conversation by <see cref="ChatTemplate"/>, tokenized whole by
/// <see cref="SftEncoder"/> with the prompt messages as context and the answer trained; the completion is the span
/// of trained tokens (answer + <c>&lt;|im_end|&gt;</c>), the prompt everything before it. Tokenizing the whole text
/// (as TRL does, slicing <c>prompt+chosen</c> after the prompt's length) keeps the BPE merges of inference.
/// </summary>
/// <remarks>
/// Length rule (TRL's <c>truncation_mode="keep_end"</c>, i.e. the sequence keeps its last max_length tokens so the
/// prompt is cut from the LEFT): when prompt + the LONGER completion exceed max_length, the prompt keeps its last
/// <c>max_length - max(|chosen|, |rejected|)</c> tokens. TRL cuts each sequence on its own; here both sides share
/// one prompt, cut for the longer answer, so that both answers are scored in the same context (identical to TRL
/// when the answers have equal length). At least one prompt token is always kept, since the first completion token
/// is predicted from the position before it; a completion longer than max_length - 1 tokens would lose its own
/// beginning (TRL would cut into it) and is a bad row instead.
/// </remarks>
public static class PreferenceTokenizer
{
    public static PreferenceDataset Tokenize(IEnumerable<PreferenceExample> examples, SftEncoder encoder, int maxLength,
        BadRowPolicy onBadRow = BadRowPolicy.Fail, int maxReportedErrors = 20)
    {
        if (maxLength < 2) throw new ArgumentOutOfRangeException(nameof(maxLength), "max_length must be >= 2 (one prompt and one completion token)");
        var report = new PreferenceTokenizeReport();
        var pairs = new List<TokenizedPair>();
        foreach (var ex in examples)
        {
            report.Pairs++;
            var (pair, error) = TokenizeOne(ex, encoder, maxLength);
            if (error != null)
            {
                var rowError = new DatasetRowError(ex.Location, error.Field, error.Reason);
                if (onBadRow == BadRowPolicy.Fail) throw new DatasetRowException(rowError);
                report.Dropped++;
                if (report.Errors.Count < maxReportedErrors) report.Errors.Add(rowError);
                continue;
            }
            pairs.Add(pair!);
            report.Kept++;
            if (pair!.PromptTokensDropped > 0) report.Truncated++;
            var cat = CategoryTools.Name(pair.Category);
            report.KeptPerCategory[cat] = report.KeptPerCategory.GetValueOrDefault(cat) + 1;
            report.PromptTokens += pair.PromptIds.Length;
            report.ChosenTokens += pair.ChosenIds.Length;
            report.RejectedTokens += pair.RejectedIds.Length;
            report.LongestSequence = Math.Max(report.LongestSequence, pair.MaxSequenceLength);
        }
        return new PreferenceDataset { Pairs = pairs, Report = report };
    }

    /// <summary>One pair, or the reason it is bad (a <see cref="RowFieldException"/> without the location).</summary>
    public static (TokenizedPair? Pair, RowFieldException? Error) TokenizeOne(PreferenceExample ex, SftEncoder encoder, int maxLength)
    {
        var (chosenPrompt, chosen) = Split(ex.Prompt, ex.Chosen, encoder);
        var (rejectedPrompt, rejected) = Split(ex.Prompt, ex.Rejected, encoder);
        if (!chosenPrompt.AsSpan().SequenceEqual(rejectedPrompt))
            return (null, new RowFieldException("rejected",
                "its prompt tokens differ from chosen's (a reasoning_content or think block in an answer is prompt context unless train_think_block is on)"));
        var longer = Math.Max(chosen.Length, rejected.Length);
        if (longer > maxLength - 1)
        {
            var side = chosen.Length >= rejected.Length ? "chosen" : "rejected";
            return (null, new RowFieldException(side,
                $"completion is {longer} tokens; max_length {maxLength} leaves room for at most {maxLength - 1} (one prompt token is always kept)"));
        }
        var keep = Math.Min(chosenPrompt.Length, maxLength - longer);
        var prompt = chosenPrompt[^keep..];
        return (new TokenizedPair(ex.Id, ex.Category, prompt, chosen, rejected, ex.Source, ex.Line, ex.Unit, chosenPrompt.Length - keep), null);
    }

    /// <summary>
    /// Encodes prompt + answer as SFT does and splits it at the trained span: (tokens before it, the trained tokens).
    /// The newline after <c>&lt;|im_end|&gt;</c> is not trained by SFT and is not part of the completion.
    /// </summary>
    static (int[] Prompt, int[] Completion) Split(IReadOnlyList<ChatMessage> prompt, IReadOnlyList<ChatMessage> answer, SftEncoder encoder)
    {
        // The answer is trained whatever assistant_turns says; every prompt message is context (the reader cleared
        // their flags, this makes it hold for pairs built in code too).
        List<ChatMessage> messages = [.. prompt.Select(m => m with { Train = false }), .. answer.Select(m => m with { Train = true, TrainDetail = null })];
        var encoded = encoder.EncodeDetailed(messages, new ChatRenderOptions(EnableThinking: encoder.Options.EnableThinking));
        var labels = encoded.Labels;
        var first = Array.FindIndex(labels, l => l != TokenizedExample.IgnoreIndex);
        var last = Array.FindLastIndex(labels, l => l != TokenizedExample.IgnoreIndex);
        // Never happens for a non-empty answer (its <|im_end|> is always trained); a gap would mean the completion
        // is not one span and the DPO sums would score context.
        if (first < 0 || Array.FindIndex(labels, first, last - first + 1, l => l == TokenizedExample.IgnoreIndex) >= 0)
            throw new InvalidOperationException("the trained tokens of a preference answer are not one contiguous span");
        return (encoded.InputIds[..first], encoded.InputIds[first..(last + 1)]);
    }
}
