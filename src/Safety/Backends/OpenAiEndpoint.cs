using System.ClientModel;
using System.ClientModel.Primitives;
using Microsoft.Extensions.AI;
using OpenAI;
using OpenAI.Chat;

namespace Qwen35.Safety.Backends;

/// <summary>Which field carries the answer's token limit: llm-jp-judge sends <c>max_tokens</c> (what vLLM and
/// llama-server read); OpenAI's newest models (llm-jp-judge's gpt-5 branch) want <c>max_completion_tokens</c>.</summary>
public enum MaxTokensField { MaxTokens, MaxCompletionTokens }

/// <summary>An OpenAI-compatible chat-completions endpoint (vLLM, llama-server, OpenAI itself).</summary>
/// <param name="Endpoint">The base URL, e.g. <c>http://127.0.0.1:8000/v1</c> (requests go to <c>{Endpoint}/chat/completions</c>).</param>
/// <param name="ModelName">The <c>model</c> field (vLLM: the served model or LoRA name).</param>
/// <param name="ApiKeyEnv">The environment variable holding the key; unset or empty = a placeholder key, for servers
/// without authentication.</param>
/// <param name="TransportRetries">Retries of a request that failed with 408, 429, 500, 502, 503, 504 or no answer, with
/// exponential back-off honouring Retry-After (the OpenAI client's own, as Python's openai client retries).</param>
/// <param name="RetryDelay">The first back-off (doubled per retry) when the server names none.</param>
/// <param name="Timeout">How long one request may take (a 1024-token answer from a slow server needs minutes).</param>
public sealed record EndpointOptions(
    Uri Endpoint,
    string ModelName,
    string ApiKeyEnv = "OPENAI_API_KEY",
    int TransportRetries = 3,
    TimeSpan? RetryDelay = null,
    TimeSpan? Timeout = null,
    MaxTokensField MaxTokensField = MaxTokensField.MaxTokens);

/// <summary>Builds the <see cref="IChatClient"/> of an <see cref="EndpointOptions"/>: Microsoft.Extensions.AI.OpenAI's
/// client over OpenAI's <see cref="ChatClient"/>, with the token limit sent in the field the options name.</summary>
public static class OpenAiEndpoint
{
    public const string PlaceholderKey = "no-key";

    public static IChatClient Create(EndpointOptions o)
    {
        var key = Environment.GetEnvironmentVariable(o.ApiKeyEnv);
        var clientOptions = new OpenAIClientOptions
        {
            Endpoint = o.Endpoint,
            RetryPolicy = new BackoffRetryPolicy(o.TransportRetries, o.RetryDelay ?? TimeSpan.FromSeconds(1)),
            NetworkTimeout = o.Timeout ?? TimeSpan.FromMinutes(10),
        };
        // ApiKeyCredential refuses an empty key; local servers take any.
        var chat = new ChatClient(o.ModelName, new ApiKeyCredential(string.IsNullOrEmpty(key) ? PlaceholderKey : key), clientOptions);
        var inner = chat.AsIChatClient();
        return o.MaxTokensField == MaxTokensField.MaxTokens ? new MaxTokensChatClient(inner) : inner;
    }

    /// <summary>Exponential back-off from <c>first</c>, or the server's Retry-After when it gives one.</summary>
    sealed class BackoffRetryPolicy(int maxRetries, TimeSpan first) : ClientRetryPolicy(maxRetries)
    {
        protected override TimeSpan GetNextDelay(PipelineMessage message, int tryCount)
        {
            if (message.Response?.Headers.TryGetValue("Retry-After", out var after) == true
                && double.TryParse(after, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var seconds))
                return TimeSpan.FromSeconds(Math.Min(seconds, 60));
            return first * Math.Pow(2, Math.Max(0, tryCount - 1));
        }
    }

    /// <summary>Sends <see cref="ChatOptions.MaxOutputTokens"/> as <c>max_tokens</c> (Microsoft.Extensions.AI.OpenAI
    /// would send <c>max_completion_tokens</c>, which some llama-server versions ignore).</summary>
    sealed class MaxTokensChatClient(IChatClient inner) : DelegatingChatClient(inner)
    {
        public override Task<ChatResponse> GetResponseAsync(IEnumerable<Microsoft.Extensions.AI.ChatMessage> messages, ChatOptions? options = null,
            CancellationToken cancellationToken = default) =>
            base.GetResponseAsync(messages, Move(options), cancellationToken);

        public override IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<Microsoft.Extensions.AI.ChatMessage> messages,
            ChatOptions? options = null, CancellationToken cancellationToken = default) =>
            base.GetStreamingResponseAsync(messages, Move(options), cancellationToken);

        static ChatOptions? Move(ChatOptions? options)
        {
            if (options?.MaxOutputTokens is not { } max) return options;
            var moved = options.Clone();
            moved.MaxOutputTokens = null;
            var prior = options.RawRepresentationFactory;
            moved.RawRepresentationFactory = client =>
            {
                var o = prior?.Invoke(client) as ChatCompletionOptions ?? new ChatCompletionOptions();
#pragma warning disable SCME0001 // JsonPatch is experimental; it is the documented way to add a field the typed options lack
                o.Patch.Set("$.max_tokens"u8, max);
#pragma warning restore SCME0001
                return o;
            };
            return moved;
        }
    }
}
