namespace Qwen35.Data;

/// <summary>Which assistant turns are trained by default (a message's own <c>train</c> flag always wins).</summary>
public enum AssistantTurns
{
    /// <summary>Every assistant turn (TRL assistant_only_loss, torchtune train_on_assistant).</summary>
    All,
    /// <summary>Only the last assistant turn (torchtune train_on_last); earlier turns are context.</summary>
    Last,
}

/// <summary>How a token whose characters are partly trained and partly not (a seam inside one BPE token) is labelled.</summary>
public enum SeamRule
{
    /// <summary>Trained only if ALL its characters are trained (default: masked text is never a target).</summary>
    Within,
    /// <summary>Trained if ANY of its characters is trained (every trained character is a target).</summary>
    Overlap,
}

/// <summary>Loss-mask options (recipe keys in snake_case: train_think_block, assistant_turns, seam_rule, rto_refusal).</summary>
/// <param name="TrainThinkBlock">Train the <c>&lt;think&gt;\n...\n&lt;/think&gt;\n\n</c> block that the template puts in
/// assistant turns after the last user query. Default false: the block (empty for plain SFT data) is context, and
/// training starts at the answer; true trains from right after <c>&lt;|im_start|&gt;assistant\n</c>.</param>
/// <param name="AssistantTurns">Which assistant turns are trained by default.</param>
/// <param name="SeamRule">Labelling of tokens that straddle a trained/untrained boundary.</param>
/// <param name="RtoRefusal">DeRTa RTO: positions of rto spans target the FIRST token id of this string.</param>
/// <param name="EnableThinking">Passed to the template (only affects a generation prompt; kept for completeness).</param>
public sealed record MaskOptions(
    bool TrainThinkBlock = false,
    AssistantTurns AssistantTurns = AssistantTurns.All,
    SeamRule SeamRule = SeamRule.Within,
    string RtoRefusal = "申し訳ありません",
    bool? EnableThinking = null);
