using System.Text.Json.Nodes;

namespace Qwen35.Data;

/// <summary>
/// A character span of a message's <c>content</c> with its own training decision (axolotl's <c>train_detail</c>).
/// </summary>
/// <param name="BeginOffset">First character (UTF-16 index into the content as given, before the template trims it).</param>
/// <param name="EndOffset">End, EXCLUSIVE: the span is content[BeginOffset..EndOffset) like a Python slice. Data written
/// with inclusive ends (axolotl's code) is read with <see cref="TrainDetailEnd.Inclusive"/>.</param>
/// <param name="Train">True/false; null = follow the message's decision (content parts without a <c>train</c> key).</param>
/// <param name="Rto">DeRTa RTO: every trained position of the span targets the refusal token instead of itself.</param>
public sealed record TrainSpan(int BeginOffset, int EndOffset, bool? Train, bool Rto = false);

/// <summary>How <c>end_offset</c> of a train_detail span is read.</summary>
public enum TrainDetailEnd
{
    /// <summary>end_offset is one past the last character (Python slice; the trainer's own schema and the bundled sample).</summary>
    Exclusive,
    /// <summary>end_offset is the last character (axolotl's implementation compares inclusive token ends).</summary>
    Inclusive,
}

/// <summary>An assistant tool call: function name and its arguments (kept in their JSON order).</summary>
public sealed record ToolCall(string Name, JsonObject? Arguments);

/// <summary>One chat message.</summary>
/// <param name="Role">system, user, assistant or tool.</param>
/// <param name="Content">The text; content given as a list of text parts arrives here concatenated, with the parts
/// recorded in <paramref name="TrainDetail"/> (see <see cref="FromParts"/>).</param>
/// <param name="Train">Per-message override of the default (assistant trained, others not).</param>
/// <param name="TrainDetail">Character spans with their own training flag; characters of the content that no span
/// covers are NOT trained (axolotl).</param>
/// <param name="ReasoningContent">The thinking text (Qwen's <c>reasoning_content</c>).</param>
/// <param name="ToolCalls">Tool calls of an assistant message.</param>
public sealed record ChatMessage(
    string Role,
    string? Content,
    bool? Train = null,
    IReadOnlyList<TrainSpan>? TrainDetail = null,
    string? ReasoningContent = null,
    IReadOnlyList<ToolCall>? ToolCalls = null)
{
    /// <summary>A content part: text plus optional train/rto flags.</summary>
    public sealed record Part(string Text, bool? Train = null, bool Rto = false);

    /// <summary>
    /// Builds a message from text parts: the content is their concatenation and each part becomes one
    /// <see cref="TrainSpan"/> (empty parts vanish), so parts and train_detail are one representation.
    /// </summary>
    public static ChatMessage FromParts(string role, IEnumerable<Part> parts, bool? train = null, string? reasoningContent = null)
    {
        var text = new System.Text.StringBuilder();
        var spans = new List<TrainSpan>();
        foreach (var p in parts)
        {
            if (p.Text.Length > 0) spans.Add(new TrainSpan(text.Length, text.Length + p.Text.Length, p.Train, p.Rto));
            text.Append(p.Text);
        }
        return new ChatMessage(role, text.ToString(), train, spans, reasoningContent);
    }
}

/// <summary>One training record.</summary>
/// <param name="Messages">The chat, in order.</param>
/// <param name="Category">E.g. safety_refusal, mid_refusal (null when the row has none).</param>
/// <param name="Id">The row's id, if any.</param>
/// <param name="Metadata">Every other column of the row, unchanged.</param>
/// <param name="Origin">The file and line/row it was read from (null when built in code), so that later stages
/// (encoding, length limits) can name a row they drop.</param>
public sealed record Conversation(
    IReadOnlyList<ChatMessage> Messages,
    string? Category = null,
    string? Id = null,
    IReadOnlyDictionary<string, JsonNode?>? Metadata = null,
    DatasetLocation? Origin = null);

/// <summary>Message role names.</summary>
public static class Roles
{
    public const string System = "system";
    public const string User = "user";
    public const string Assistant = "assistant";
    public const string Tool = "tool";
}
