namespace Qwen35.Data;

/// <summary>Why a conversation was cut or left out.</summary>
public enum SftNoteKind
{
    Truncated,
    DroppedTooLong,
    DroppedNoTarget,
}

/// <summary>One conversation that was truncated or dropped, named by where it was read (or its index when built in code).</summary>
public sealed record SftNote(SftNoteKind Kind, int Index, DatasetLocation? Origin, string? Id, string Reason)
{
    public bool Dropped => Kind != SftNoteKind.Truncated;

    /// <summary>"FILE line N (id X): reason".</summary>
    public override string ToString() => $"{Origin?.ToString() ?? $"conversation {Index}"}{(Id != null ? $" (id {Id})" : "")}: {Reason}";
}

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
    /// <summary>What was dropped or truncated and why, naming each conversation by its file and line/row: the first
    /// <see cref="MaxNotesPerKind"/> dropped ones and the first <see cref="MaxNotesPerKind"/> truncated ones.</summary>
    public List<SftNote> Notes { get; } = [];

    /// <summary>The notes of dropped conversations (too long, or no trained token).</summary>
    public IEnumerable<SftNote> DroppedNotes => Notes.Where(n => n.Dropped);

    public const int MaxNotesPerKind = 20;

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
                Note(report, SftNoteKind.DroppedNoTarget, i, conversations[i], NoTrainedTurn);
                continue;
            }
            var fitted = SftEncoder.FitLength(full, maxLength, policy);
            if (fitted == null)
            {
                report.DroppedTooLong++;
                Note(report, SftNoteKind.DroppedTooLong, i, conversations[i], policy == OverLength.Drop
                    ? $"{full.Length} tokens > max_length {maxLength}, dropped"
                    : $"{full.Length} tokens > max_length {maxLength}, dropped: no trained token is left after truncation");
                continue;
            }
            if (fitted.Length < full.Length)
            {
                report.Truncated++;
                Note(report, SftNoteKind.Truncated, i, conversations[i], $"{full.Length} tokens truncated to {maxLength}");
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

    /// <summary>Why a conversation without any trained position is dropped (the words inspect uses too).</summary>
    public const string NoTrainedTurn = "no trained assistant turn";

    static void Note(SftEncodeReport report, SftNoteKind kind, int index, Conversation c, string reason)
    {
        var dropped = kind != SftNoteKind.Truncated;
        if (report.Notes.Count(n => n.Dropped == dropped) < SftEncodeReport.MaxNotesPerKind)
            report.Notes.Add(new SftNote(kind, index, c.Origin, c.Id, reason));
    }
}
