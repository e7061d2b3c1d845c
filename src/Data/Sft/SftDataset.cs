namespace Qwen35.Data;

/// <summary>What happened while encoding a dataset.</summary>
public sealed class SftEncodeReport
{
    public int Conversations { get; internal set; }
    public int Kept { get; internal set; }
    /// <summary>Longer than max_length and cut (keep_start).</summary>
    public int Truncated { get; internal set; }
    /// <summary>Longer than max_length and dropped (over_length: drop, or truncation left no target).</summary>
    public int DroppedTooLong { get; internal set; }
    /// <summary>Dropped because no position is trained (e.g. every assistant turn has train: false).</summary>
    public int DroppedNoTarget { get; internal set; }
    public SortedDictionary<string, int> KeptPerCategory { get; } = new(StringComparer.Ordinal);
    /// <summary>Token lengths of the kept examples (after truncation).</summary>
    public List<int> Lengths { get; } = [];
    /// <summary>Up to 20 "(index) reason" lines for dropped or truncated conversations.</summary>
    public List<string> Notes { get; } = [];

    public long TrainedTokens { get; internal set; }
    public long Tokens { get; internal set; }
}

/// <summary>Encoded examples ready for batching, with the report of what was cut or dropped.</summary>
public sealed record SftDataset(IReadOnlyList<TokenizedExample> Examples, IReadOnlyList<int> SourceIndices, SftEncodeReport Report)
{
    /// <summary>
    /// Encodes every conversation with <paramref name="encoder"/> and applies the length policy. SourceIndices[i] is
    /// the index in <paramref name="conversations"/> of Examples[i].
    /// </summary>
    public static SftDataset Build(IReadOnlyList<Conversation> conversations, SftEncoder encoder, int maxLength, OverLength policy)
    {
        var report = new SftEncodeReport { Conversations = conversations.Count };
        var examples = new List<TokenizedExample>();
        var sources = new List<int>();
        for (var i = 0; i < conversations.Count; i++)
        {
            var full = encoder.Encode(conversations[i]);
            if (full.TrainedTokens == 0)
            {
                report.DroppedNoTarget++;
                Note(report, i, conversations[i], "no trained token");
                continue;
            }
            var fitted = SftEncoder.FitLength(full, maxLength, policy);
            if (fitted == null)
            {
                report.DroppedTooLong++;
                Note(report, i, conversations[i], $"{full.Length} tokens > max_length {maxLength}, dropped");
                continue;
            }
            if (fitted.Length < full.Length)
            {
                report.Truncated++;
                Note(report, i, conversations[i], $"{full.Length} tokens truncated to {maxLength}");
            }
            examples.Add(fitted);
            sources.Add(i);
            report.Kept++;
            report.Lengths.Add(fitted.Length);
            report.Tokens += fitted.Length;
            report.TrainedTokens += fitted.TrainedTokens;
            var cat = CategoryTools.Name(fitted.Category);
            report.KeptPerCategory[cat] = report.KeptPerCategory.GetValueOrDefault(cat) + 1;
        }
        return new SftDataset(examples, sources, report);
    }

    static void Note(SftEncodeReport report, int index, Conversation c, string reason)
    {
        if (report.Notes.Count < 20) report.Notes.Add($"conversation {index}{(c.Id != null ? $" (id {c.Id})" : "")}: {reason}");
    }
}
