namespace Qwen35.Data.Preference;

/// <summary>
/// One preference pair as read from a file (TRL's explicit-prompt layout): the prompt messages and the two
/// competing completions, each a single assistant message.
/// </summary>
/// <param name="Id">The row's <c>id</c>, if any.</param>
/// <param name="Category">The row's <c>category</c>, if any (e.g. safety_refusal).</param>
/// <param name="Prompt">The context: system/user/assistant/tool messages ending with a user (or tool) message.
/// A standard-format prompt string arrives as one user message. Every message here is context (never trained).</param>
/// <param name="Chosen">The preferred answer: exactly one assistant message.</param>
/// <param name="Rejected">The dispreferred answer: exactly one assistant message.</param>
/// <param name="Source">The file the row was read from (full path).</param>
/// <param name="Line">The 1-based line (JSONL) or 0-based row (Parquet, JSON array file); see <paramref name="Unit"/>.</param>
/// <param name="Unit">Whether <paramref name="Line"/> counts lines or rows.</param>
public sealed record PreferenceExample(
    string? Id,
    string? Category,
    IReadOnlyList<ChatMessage> Prompt,
    IReadOnlyList<ChatMessage> Chosen,
    IReadOnlyList<ChatMessage> Rejected,
    string Source,
    int Line,
    LocationUnit Unit = LocationUnit.Line)
{
    /// <summary>"FILE line N" / "FILE row N": how every message names this row.</summary>
    public DatasetLocation Location => new(Source, Unit, Line);
}

/// <summary>
/// A tokenized preference pair. The chosen sequence is <c>PromptIds ++ ChosenIds</c>, the rejected one
/// <c>PromptIds ++ RejectedIds</c>; only the completion tokens are scored.
/// </summary>
/// <param name="PromptIds">The rendered prompt including the generation prompt as the chat template writes it
/// before the answer (<c>&lt;|im_start|&gt;assistant\n&lt;think&gt;\n\n&lt;/think&gt;\n\n</c> for Qwen3.5, i.e.
/// what <c>add_generation_prompt</c> with <c>enable_thinking=false</c> renders; with train_think_block on, the think
/// block belongs to the completion instead). Truncated from the LEFT when prompt + the longer completion exceed
/// max_length.</param>
/// <param name="ChosenIds">The chosen completion: exactly the tokens SFT trains for that assistant turn (its
/// answer and its <c>&lt;|im_end|&gt;</c>; not the newline after it).</param>
/// <param name="RejectedIds">The rejected completion, tokenized the same way.</param>
/// <param name="Source">The file the row came from.</param>
/// <param name="Line">Its 1-based line (JSONL) or 0-based row (Parquet); see <paramref name="Unit"/>.</param>
/// <param name="Unit">Whether <paramref name="Line"/> counts lines or rows.</param>
/// <param name="PromptTokensDropped">How many prompt tokens the left truncation removed (0: whole prompt kept).</param>
public sealed record TokenizedPair(
    string? Id,
    string? Category,
    int[] PromptIds,
    int[] ChosenIds,
    int[] RejectedIds,
    string Source,
    int Line,
    LocationUnit Unit = LocationUnit.Line,
    int PromptTokensDropped = 0)
{
    public DatasetLocation Location => new(Source, Unit, Line);

    /// <summary>Prompt followed by the chosen completion.</summary>
    public int[] ChosenSequence() => [.. PromptIds, .. ChosenIds];

    /// <summary>Prompt followed by the rejected completion.</summary>
    public int[] RejectedSequence() => [.. PromptIds, .. RejectedIds];

    /// <summary>Index of the first completion token in either sequence (= PromptIds.Length).</summary>
    public int CompletionStart => PromptIds.Length;

    /// <summary>The longer of the two sequences, in tokens (never more than the max_length it was built with).</summary>
    public int MaxSequenceLength => PromptIds.Length + Math.Max(ChosenIds.Length, RejectedIds.Length);
}

/// <summary>TRL's two preference layouts.</summary>
public enum PreferenceFormat
{
    /// <summary><c>prompt</c>, <c>chosen</c>, <c>rejected</c> are lists of messages.</summary>
    Conversational,
    /// <summary><c>prompt</c>, <c>chosen</c>, <c>rejected</c> are strings (the prompt becomes a user message).</summary>
    Standard,
}
