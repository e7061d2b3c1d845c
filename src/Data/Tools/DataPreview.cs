using System.Text;

namespace Qwen35.Data;

/// <summary>What <c>trainer data preview</c> needs (a recipe supplies the same fields).</summary>
/// <param name="DataPath">Dataset file, folder or glob.</param>
/// <param name="Tokenizer">The tokenizer (the CLI resolves it: a recipe's through the session, or --tokenizer).</param>
/// <param name="Mask">Loss-mask options.</param>
/// <param name="Count">How many conversations to show (the first ones).</param>
/// <param name="Ansi">Highlight with terminal colours instead of brackets.</param>
public sealed record DataPreviewOptions(string DataPath, ITokenizer Tokenizer, MaskOptions? Mask = null, int Count = 3, bool Ansi = false);

/// <summary>
/// Shows rendered samples with the trained tokens marked: <c>[[...]]</c> (or green) = trained, <c>{{rto:...}}</c>
/// (or magenta) = RTO positions (their target is the refusal token), the rest is context.
/// </summary>
public static class DataPreview
{
    public static void Run(DataPreviewOptions options, TextWriter output)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Count, 1, nameof(options.Count));
        var tokenizer = options.Tokenizer;
        var read = DatasetReader.Read(options.DataPath, new DatasetReadOptions(OnError: BadRowPolicy.Skip));
        var encoder = new SftEncoder(tokenizer, options.Mask);
        for (var i = 0; i < Math.Min(options.Count, read.Conversations.Count); i++)
        {
            var c = read.Conversations[i];
            var where = read.Origins[i];
            var e = encoder.EncodeDetailed(c);
            var trained = e.Labels.Count(l => l != TokenizedExample.IgnoreIndex);
            output.WriteLine($"=== {Path.GetFileName(where.File)} {where.Position}  category={CategoryTools.Name(c.Category)}  id={c.Id ?? "-"}  tokens={e.InputIds.Length}  trained={trained}");
            output.WriteLine(Format(e, encoder.RefusalIdOrNull(), options.Ansi));
        }
        if (read.ErrorCount > 0) output.WriteLine($"({read.ErrorCount} bad rows skipped; first: {read.Errors[0]})");
    }

    /// <summary>The rendered text with runs of trained / RTO tokens marked (token-level, i.e. what the loss sees).</summary>
    public static string Format(EncodedConversation e, int? refusalId, bool ansi)
    {
        var sb = new StringBuilder();
        var pos = 0;
        var t = 0;
        while (t < e.InputIds.Length)
        {
            var state = State(e, t, refusalId);
            while (t < e.InputIds.Length && State(e, t, refusalId) == state) t++;
            var end = Math.Max(pos, e.Offsets[t - 1].End);
            var text = e.Text[Math.Min(pos, end)..end];
            pos = end;
            if (state == 0) sb.Append(text);
            else if (ansi) sb.Append(state == 1 ? "\u001b[32m" : "\u001b[35m").Append(text).Append("\u001b[0m");
            else sb.Append(state == 1 ? "[[" : "{{rto:").Append(text).Append(state == 1 ? "]]" : "}}");
        }
        sb.Append(e.Text[pos..]);
        return sb.ToString();
    }

    static int State(EncodedConversation e, int t, int? refusalId) =>
        e.Labels[t] == TokenizedExample.IgnoreIndex ? 0 : e.Labels[t] != e.InputIds[t] && e.Labels[t] == refusalId ? 2 : 1;
}
