namespace Qwen35.Data;

/// <summary>What to do with an example longer than the maximum length.</summary>
public enum OverLength
{
    /// <summary>Keep the first max_length tokens (TRL keep_start); dropped if no trained token survives.</summary>
    Truncate,
    /// <summary>Drop the example.</summary>
    Drop,
}

/// <summary>An encoded conversation with everything needed to show or debug its mask.</summary>
/// <param name="Text">The rendered chat string.</param>
/// <param name="Offsets">Per token, its [Start, End) in <paramref name="Text"/>.</param>
/// <param name="CharMask">Per character: 0 context, 1 trained, 2 trained RTO.</param>
public sealed record EncodedConversation(string Text, int[] InputIds, int[] Labels, (int Start, int End)[] Offsets, byte[] CharMask);

/// <summary>
/// Turns a <see cref="Conversation"/> into input ids and aligned labels: render with <see cref="ChatTemplate"/>,
/// tokenize the WHOLE rendered string once (so BPE merges are those of inference), then label each token from the
/// character mask through the token offsets.
/// </summary>
/// <remarks>
/// Token rule: a token is trained when its characters are all trained (<see cref="SeamRule.Within"/>, default) or
/// any is (<see cref="SeamRule.Overlap"/>). Its label is its own id, or the first id of
/// <see cref="MaskOptions.RtoRefusal"/> when any of its trained characters lies in an RTO span. Special tokens
/// (<c>&lt;|im_end|&gt;</c>, <c>&lt;think&gt;</c>) are whole characters ranges, so template seams never straddle.
/// </remarks>
public sealed class SftEncoder(ITokenizer tokenizer, MaskOptions? options = null)
{
    readonly MaskOptions _options = options ?? new MaskOptions();
    int? _refusalId;

    public ITokenizer Tokenizer => tokenizer;
    public MaskOptions Options => _options;

    /// <summary>First token id of the RTO refusal string.</summary>
    public int RefusalId => _refusalId ??= tokenizer.Encode(_options.RtoRefusal) is { Length: > 0 } ids ? ids[0]
        : throw new InvalidOperationException("rto_refusal is empty; RTO needs a refusal string");

    /// <summary>The refusal id, or null when the refusal string is empty.</summary>
    public int? RefusalIdOrNull() => string.IsNullOrEmpty(_options.RtoRefusal) ? null : RefusalId;

    public TokenizedExample Encode(Conversation conversation)
    {
        var e = EncodeDetailed(conversation);
        return new TokenizedExample(e.InputIds, e.Labels, conversation.Category, conversation.Id);
    }

    public EncodedConversation EncodeDetailed(Conversation conversation) =>
        EncodeDetailed(conversation.Messages, new ChatRenderOptions(EnableThinking: _options.EnableThinking));

    /// <summary>Encodes messages rendered with explicit template options (a generation prompt is never trained).</summary>
    public EncodedConversation EncodeDetailed(IReadOnlyList<ChatMessage> messages, ChatRenderOptions render)
    {
        var rendered = ChatTemplate.Render(messages, render);
        var spans = TrainedSpans.Compute(messages, rendered, _options);
        var charMask = TrainedSpans.CharMask(rendered.Text.Length, spans);
        var (ids, offsets) = tokenizer.EncodeWithOffsets(rendered.Text);
        var labels = new int[ids.Length];
        for (var t = 0; t < ids.Length; t++)
        {
            var (s, e) = offsets[t];
            int trained = 0, rto = 0;
            for (var c = s; c < e; c++)
            {
                if (charMask[c] != 0) trained++;
                if (charMask[c] == 2) rto++;
            }
            var isTrained = _options.SeamRule == SeamRule.Within ? trained == e - s && e > s : trained > 0;
            labels[t] = !isTrained ? TokenizedExample.IgnoreIndex : rto > 0 ? RefusalId : ids[t];
        }
        return new EncodedConversation(rendered.Text, ids, labels, offsets, charMask);
    }

    /// <summary>
    /// Applies the length limit: null when the example must be dropped (too long with <see cref="OverLength.Drop"/>,
    /// or nothing trained left after truncation).
    /// </summary>
    public static TokenizedExample? FitLength(TokenizedExample example, int maxLength, OverLength policy)
    {
        if (example.Length <= maxLength) return example;
        if (policy == OverLength.Drop) return null;
        var cut = example with { InputIds = example.InputIds[..maxLength], Labels = example.Labels[..maxLength] };
        return cut.TrainedTokens > 0 ? cut : null;
    }
}
