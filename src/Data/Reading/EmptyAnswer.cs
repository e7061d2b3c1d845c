namespace Qwen35.Data;

/// <summary>
/// An assistant turn with nothing to say is rendered as an immediate <c>&lt;|im_end|&gt;</c> and, when trained,
/// teaches the model to answer with nothing (e.g. to a self-harm question). Every layout refuses it as a bad row.
/// </summary>
static class EmptyAnswer
{
    public const string Reason = "assistant turn is empty (no content and no tool calls)";

    /// <summary>
    /// True when the message is an assistant turn without tool calls whose answer, as the template renders it, is
    /// empty: content null, "", only white space (the template strips it), or only an inline think block.
    /// </summary>
    public static bool Is(ChatMessage m)
    {
        if (m.Role != Roles.Assistant || m.ToolCalls is { Count: > 0 }) return false;
        var content = m.Content ?? "";
        // Like the template: without reasoning_content, the answer is what follows the last </think>.
        const string thinkClose = "</think>";
        if (m.ReasoningContent == null && content.LastIndexOf(thinkClose, StringComparison.Ordinal) is var close and >= 0)
            content = content[(close + thinkClose.Length)..];
        return PyText.Strip(content).Length == 0;
    }

    /// <summary>Throws a <see cref="RowFieldException"/> on <paramref name="field"/> when <see cref="Is"/>.</summary>
    public static ChatMessage Refuse(ChatMessage m, string field) =>
        Is(m) ? throw new RowFieldException(field, Reason) : m;
}
