using Microsoft.Extensions.AI;
using Qwen35.Safety.Judging;

namespace Qwen35.Safety.Generation;

/// <summary>
/// The messages and sampling of one kind of call (answer generation or judging), with llm-jp-judge v2.0.0's values as
/// defaults (config/benchmark/generate.yaml, evaluate.yaml): temperature 1.0, top_p 0.95, seed 1234, max_tokens 1024,
/// frequency_penalty 0.0.
/// </summary>
/// <param name="SystemPrompt">Sent as a system message before the user's; null = no system message. An empty string
/// is still sent (as llm-jp-judge sends safety_borderline_ja's <c>""</c>).</param>
public sealed record SamplingSettings(
    string? SystemPrompt,
    float Temperature = 1.0f,
    float TopP = 0.95f,
    long? Seed = 1234,
    int MaxTokens = 1024,
    float? FrequencyPenalty = 0.0f)
{
    /// <summary>Answer generation: safety_ja's system prompt; safety_borderline_ja's empty one.</summary>
    public static SamplingSettings Generation(SafetyBenchmark benchmark) =>
        new(benchmark == SafetyBenchmark.SafetyJa ? JudgeTemplates.SystemPrompt : "");

    /// <summary>The judge of both benchmarks.</summary>
    public static SamplingSettings Judge { get; } = new(JudgeTemplates.SystemPrompt);

    /// <summary>A fresh options object per call: a client may change the options it is given.</summary>
    public ChatOptions ToChatOptions() => new()
    {
        Temperature = Temperature,
        TopP = TopP,
        Seed = Seed,
        MaxOutputTokens = MaxTokens,
        FrequencyPenalty = FrequencyPenalty,
    };

    public List<ChatMessage> Messages(string userText)
    {
        var messages = new List<ChatMessage>(2);
        if (SystemPrompt is not null) messages.Add(new ChatMessage(ChatRole.System, SystemPrompt));
        messages.Add(new ChatMessage(ChatRole.User, userText));
        return messages;
    }

    /// <summary>Range checks, keyed by the flag that sets each value.</summary>
    public IEnumerable<OptionProblem> Problems(string prefix = "--") => new OptionChecks()
        .Require(Temperature >= 0, $"{prefix}temperature", "must be >= 0")
        .Require(TopP is > 0 and <= 1, $"{prefix}top-p", "must be in (0, 1]")
        .Require(MaxTokens > 0, $"{prefix}max-tokens", "must be > 0")
        .Problems;
}
