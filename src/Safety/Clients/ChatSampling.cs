using Microsoft.Extensions.AI;

namespace Qwen35.Safety.Clients;

/// <summary>
/// What the local chat clients (<see cref="TrainerChatClient"/>, <see cref="LlamaGgufChatClient"/>) read from a
/// <see cref="ChatOptions"/>, with the defaults of an OpenAI-compatible server where the options say nothing:
/// temperature 1, top_p 1, no top_k, a random seed. Temperature 0 means greedy (argmax) decoding, as in vLLM.
/// </summary>
/// <param name="Greedy">Argmax decoding (temperature 0).</param>
/// <param name="Temperature">Sampling temperature (&gt; 0 when sampling).</param>
/// <param name="TopP">Nucleus mass in (0, 1]; 1 disables.</param>
/// <param name="TopK">Keep the k most likely tokens; 0 disables.</param>
/// <param name="Seed">Sampler seed; null draws a random one.</param>
/// <param name="MaxOutputTokens">Most tokens to generate (a stop token counts as one).</param>
/// <param name="StopSequences">Texts that end the answer (the answer is cut before the first one).</param>
/// <param name="EnableThinking">Open a thinking block (true) or render the template's closed empty one (false).</param>
public sealed record ChatSampling(bool Greedy, double Temperature, double TopP, int TopK, long? Seed, int MaxOutputTokens,
    IReadOnlyList<string> StopSequences, bool EnableThinking)
{
    /// <summary>
    /// Key of <see cref="ChatOptions.AdditionalProperties"/> that turns thinking on (<c>true</c>); the Qwen3.5 chat
    /// template's <c>enable_thinking</c> (vLLM's <c>chat_template_kwargs</c>). Absent or false: thinking off.
    /// </summary>
    public const string EnableThinkingKey = "enable_thinking";

    /// <summary>Reads <paramref name="options"/>; <paramref name="defaultMaxOutputTokens"/> applies when
    /// <see cref="ChatOptions.MaxOutputTokens"/> is null. Out-of-range values are <see cref="ArgumentException"/>s
    /// naming the option (a caller's programming error, as for any IChatClient).</summary>
    public static ChatSampling From(ChatOptions? options, int defaultMaxOutputTokens)
    {
        var temperature = options?.Temperature ?? 1f;
        if (!(temperature >= 0)) throw new ArgumentOutOfRangeException(nameof(options), temperature, "ChatOptions.Temperature must be >= 0 (0 = greedy)");
        var topP = options?.TopP ?? 1f;
        if (!(topP > 0 && topP <= 1)) throw new ArgumentOutOfRangeException(nameof(options), topP, "ChatOptions.TopP must be in (0, 1]");
        var topK = options?.TopK ?? 0;
        if (topK < 0) throw new ArgumentOutOfRangeException(nameof(options), topK, "ChatOptions.TopK must be >= 0 (0 = all tokens)");
        var max = options?.MaxOutputTokens ?? defaultMaxOutputTokens;
        if (max < 1) throw new ArgumentOutOfRangeException(nameof(options), max, "ChatOptions.MaxOutputTokens must be >= 1");
        var stops = (options?.StopSequences ?? []).Where(s => !string.IsNullOrEmpty(s)).ToArray();
        return new ChatSampling(temperature == 0, temperature, topP, topK, options?.Seed, max, stops, ThinkingOn(options));
    }

    static bool ThinkingOn(ChatOptions? options)
    {
        if (options?.AdditionalProperties is not { } props || !props.TryGetValue(EnableThinkingKey, out var value)) return false;
        return value switch
        {
            bool b => b,
            string s when bool.TryParse(s, out var b) => b,
            System.Text.Json.JsonElement { ValueKind: System.Text.Json.JsonValueKind.True } => true,
            System.Text.Json.JsonElement { ValueKind: System.Text.Json.JsonValueKind.False } => false,
            null => false,
            _ => throw new ArgumentException($"ChatOptions.AdditionalProperties[\"{EnableThinkingKey}\"] must be true or false, got {value}", nameof(options)),
        };
    }
}

/// <summary>Turns a generated text into the assistant message both local clients return.</summary>
public static class ChatAnswer
{
    const string ThinkClose = "</think>";

    /// <summary>
    /// Cuts <paramref name="text"/> before the first of <paramref name="stopSequences"/> (true when one was found),
    /// as an OpenAI-compatible server does: the stop text itself is not returned.
    /// </summary>
    public static (string Text, bool Stopped) CutAtStop(string text, IReadOnlyList<string> stopSequences)
    {
        var cut = -1;
        foreach (var stop in stopSequences)
        {
            var at = text.IndexOf(stop, StringComparison.Ordinal);
            if (at >= 0 && (cut < 0 || at < cut)) cut = at;
        }
        return cut < 0 ? (text, false) : (text[..cut], true);
    }

    /// <summary>
    /// The assistant message of a generated text. With thinking on, the text up to <c>&lt;/think&gt;</c> is the
    /// reasoning (a <see cref="TextReasoningContent"/>, so <see cref="ChatMessage.Text"/> is only the answer, as
    /// vLLM's reasoning parser returns it) and the rest, without the newlines the template puts after the block, the
    /// answer. With thinking off the template already closed the block, so the text is the answer as generated.
    /// </summary>
    public static ChatMessage Message(string text, bool thinking)
    {
        var close = thinking ? text.IndexOf(ThinkClose, StringComparison.Ordinal) : -1;
        if (close < 0) return new ChatMessage(ChatRole.Assistant, text);
        var reasoning = text[..close];
        if (reasoning.StartsWith("<think>", StringComparison.Ordinal)) reasoning = reasoning["<think>".Length..];
        var answer = text[(close + ThinkClose.Length)..].TrimStart('\n');
        return new ChatMessage(ChatRole.Assistant, [new TextReasoningContent(reasoning.Trim('\n')), new TextContent(answer)]);
    }
}
