namespace Qwen35.Data;

/// <summary>A half-open character range [Start, End) of the rendered text that is trained; Rto marks DeRTa RTO spans.</summary>
public readonly record struct CharSpan(int Start, int End, bool Rto = false);

/// <summary>
/// Decides which characters of a rendered conversation are training targets, from the messages' flags and the
/// <see cref="MaskOptions"/>.
/// </summary>
/// <remarks>
/// Per message: trained = its <c>train</c> flag, else (train_detail given) true, else assistant (all, or only the
/// last one with <see cref="AssistantTurns.Last"/>). For a trained message the targets are its content, the tool
/// calls after it and its <c>&lt;|im_end|&gt;</c> (not the newline after it, not the <c>&lt;|im_start|&gt;role\n</c>
/// header, and the think block only with <see cref="MaskOptions.TrainThinkBlock"/>). With train_detail only the
/// spans marked train (or inheriting the message's decision) of the content are targets; content characters no
/// span covers are context. Spans are mapped through the template's trimming and think-splitting; a span's part
/// that the template dropped is simply not in the text. When all trained content spans of a message are RTO, its
/// <c>&lt;|im_end|&gt;</c> is an RTO position too.
/// </remarks>
public static class TrainedSpans
{
    public static List<CharSpan> Compute(IReadOnlyList<ChatMessage> messages, RenderedChat rendered, MaskOptions options)
    {
        var lastAssistant = -1;
        for (var i = messages.Count - 1; i >= 0 && lastAssistant < 0; i--)
            if (messages[i].Role == Roles.Assistant) lastAssistant = i;

        var spans = new List<CharSpan>();
        foreach (var turn in rendered.Turns)
        {
            var m = messages[turn.MessageIndex];
            var roleDefault = m.Role == Roles.Assistant && (options.AssistantTurns == AssistantTurns.All || turn.MessageIndex == lastAssistant);
            var trained = m.Train ?? (m.TrainDetail is { Count: > 0 } || roleDefault);
            if (!trained) continue;

            if (options.TrainThinkBlock && turn.ThinkStart >= 0) spans.Add(new CharSpan(turn.ThinkStart, turn.ThinkEnd));

            var contentSpans = 0;
            var rtoSpans = 0;
            if (m.TrainDetail == null) spans.Add(new CharSpan(turn.ContentStart, turn.ContentEnd));
            else
            {
                var shift = turn.ContentStart - turn.RawContentOffset;
                foreach (var d in m.TrainDetail)
                {
                    if (d.Train == false) continue;
                    var s = Math.Max(d.BeginOffset + shift, turn.ContentStart);
                    var e = Math.Min(d.EndOffset + shift, turn.ContentEnd); // EndOffset is exclusive
                    if (e <= s) continue;
                    spans.Add(new CharSpan(s, e, d.Rto));
                    contentSpans++;
                    if (d.Rto) rtoSpans++;
                }
            }
            // A message whose trained content is all RTO (DeRTa's RTO row) must not teach a clean stop after the
            // harmful text either: its <|im_end|> targets the refusal too, as DeRTa relabels the whole response.
            var endIsRto = contentSpans > 0 && rtoSpans == contentSpans;
            if (turn.BodyEnd > turn.ContentEnd) spans.Add(new CharSpan(turn.ContentEnd, turn.BodyEnd)); // tool calls
            if (turn.EndTokenStart >= 0) spans.Add(new CharSpan(turn.EndTokenStart, turn.EndTokenStart + ChatTemplate.ImEnd.Length, endIsRto));
        }
        return spans;
    }

    /// <summary>Per-character flags of the rendered text: 0 = context, 1 = trained, 2 = trained RTO.</summary>
    public static byte[] CharMask(int length, IEnumerable<CharSpan> spans)
    {
        var mask = new byte[length];
        foreach (var s in spans)
            for (var i = s.Start; i < s.End; i++) mask[i] = Math.Max(mask[i], s.Rto ? (byte)2 : (byte)1);
        return mask;
    }
}
