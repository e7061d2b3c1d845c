using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;
using Qwen35.Data;
using Qwen35.Models;
using Qwen35.Models.Generation;
using Qwen35.Training;
using Serilog;
using DataMessage = Qwen35.Data.ChatMessage;
using ChatMessage = Microsoft.Extensions.AI.ChatMessage;

namespace Qwen35.Safety.Clients;

/// <summary>
/// This trainer's own model (a Hugging Face Qwen3.5 folder or <c>builtin:tiny</c>, optionally with a PEFT LoRA
/// adapter) as a <see cref="IChatClient"/>, so a .NET application uses a trained adapter like any other chat model.
/// <list type="bullet">
/// <item>Prompts are rendered with the Qwen3.5 chat template (<see cref="ChatTemplate"/>, the same code that renders
/// the training data) with the assistant generation prompt and thinking OFF (the closed empty think block of
/// <c>enable_thinking=false</c>); <see cref="ChatSampling.EnableThinkingKey"/> = true in
/// <see cref="ChatOptions.AdditionalProperties"/> opens a think block instead, and the reasoning comes back as a
/// <see cref="TextReasoningContent"/>. <c>builtin:tiny</c> renders with the same template: its byte tokenizer knows
/// <c>&lt;|im_start|&gt;</c>, <c>&lt;|im_end|&gt;</c>, <c>&lt;think&gt;</c> as added tokens, so its prompts are the
/// same strings as a real model's (its answers are random bytes, which is all a test needs).</item>
/// <item>Generation runs through <see cref="TokenGenerator"/>: up to <see cref="BatchSize"/> conversations per
/// batch, left-padded, with the KV/DeltaNet caches; it stops at the config's eos ids and the tokenizer's
/// <c>&lt;|im_end|&gt;</c>/<c>&lt;|endoftext|&gt;</c>.</item>
/// <item><see cref="ChatOptions"/>: Temperature (0 = greedy; null = 1 as an OpenAI-compatible server), TopP, TopK,
/// Seed, MaxOutputTokens (null = <see cref="DefaultMaxOutputTokens"/>) and StopSequences (the answer is cut before
/// the first one; a stop text that is one token also ends that row's decoding early, longer ones are found in the
/// decoded text, so tokens after them are generated and discarded). Instructions become (or extend) the system
/// message. Other options are ignored.</item>
/// <item>Sampling draws every row of a batch from one generator seeded with <see cref="ChatOptions.Seed"/> (batch k
/// of one call with seed + k), so a seeded call repeats exactly when the same conversations are batched the same
/// way; greedy answers do not depend on the batching.</item>
/// <item>Streaming yields the whole answer as one update (generation is batched, not token-streamed).</item>
/// <item>Calls are serialised (one model, one batch at a time); concurrency comes from batching many conversations
/// in one <see cref="GetResponsesAsync"/> call.</item>
/// </list>
/// </summary>
public sealed class TrainerChatClient : IChatClient
{
    readonly Qwen35ForCausalLM _model;
    readonly ITokenizer _tokenizer;
    readonly bool _ownsModel;
    readonly ILogger? _log;
    readonly SemaphoreSlim _gate = new(1, 1);
    readonly int[] _stopIds;
    readonly int _padId;
    readonly ChatClientMetadata _metadata;

    /// <summary>Loads the session's model (and adapter) once; the client owns it and frees it on <see cref="Dispose"/>.
    /// <paramref name="seed"/> draws the weights of <c>builtin:tiny</c>.</summary>
    public TrainerChatClient(Session session, ILogger? log = null, long seed = 42)
    {
        ArgumentNullException.ThrowIfNull(session);
        // The tokenizer first: a folder without one fails before a possibly large model loads.
        var tokenizer = session.Tokenizer;
        var model = session.LoadModel(log ?? Serilog.Core.Logger.None, seed);
        var id = session.ModelDir ?? Session.BuiltinTiny;
        if (session.AdapterDir is not null) id += "+" + session.AdapterDir;
        (_model, _tokenizer, _ownsModel, _log) = (model, tokenizer, true, log);
        (_stopIds, _padId) = StopsAndPad(model, tokenizer);
        _metadata = new ChatClientMetadata("qwen35-trainer", null, id);
    }

    /// <summary>A client over a model that someone else owns (e.g. the model being trained): it is never disposed
    /// here, and its train/eval mode is restored after each call.</summary>
    public TrainerChatClient(Qwen35ForCausalLM model, ITokenizer tokenizer, string modelId, ILogger? log = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokenizer);
        if (tokenizer.VocabSize > model.Config.VocabSize)
            throw new ArgumentException($"the tokenizer has {tokenizer.VocabSize} tokens but the model's vocab_size is {model.Config.VocabSize}", nameof(tokenizer));
        (_model, _tokenizer, _ownsModel, _log) = (model, tokenizer, false, log);
        (_stopIds, _padId) = StopsAndPad(model, tokenizer);
        _metadata = new ChatClientMetadata("qwen35-trainer", null, modelId);
    }

    /// <summary>Conversations generated together in one batch (memory grows with it and with the longest prompt).</summary>
    public int BatchSize { get; init; } = 8;

    /// <summary>Answer length when <see cref="ChatOptions.MaxOutputTokens"/> is null (llm-jp-judge's max_tokens).</summary>
    public int DefaultMaxOutputTokens { get; init; } = 1024;

    /// <summary>Ids that end a row: the config's eos ids and the tokenizer's stop ids (those inside the vocabulary).</summary>
    public IReadOnlyList<int> StopTokenIds => _stopIds;

    /// <summary>The exact prompt text a conversation is rendered to (what <see cref="GetResponsesAsync"/> tokenizes).</summary>
    public string RenderPrompt(IEnumerable<ChatMessage> messages, ChatOptions? options = null) =>
        Render(messages, options, ChatSampling.From(options, DefaultMaxOutputTokens).EnableThinking);

    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        CancellationToken cancellationToken = default) =>
        (await GetResponsesAsync([messages], options, cancellationToken).ConfigureAwait(false))[0];

    /// <summary>
    /// Answers every conversation, <see cref="BatchSize"/> at a time, in order; one <see cref="ChatResponse"/> per
    /// conversation. Cancellation is checked between batches.
    /// </summary>
    public async Task<IReadOnlyList<ChatResponse>> GetResponsesAsync(IReadOnlyList<IEnumerable<ChatMessage>> conversations,
        ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(conversations);
        if (BatchSize < 1) throw new InvalidOperationException($"BatchSize must be >= 1, got {BatchSize}");
        var sampling = ChatSampling.From(options, DefaultMaxOutputTokens);
        // Render and encode up front: a bad conversation fails before any generation.
        var prompts = conversations.Select(c => _tokenizer.Encode(Render(c, options, sampling.EnableThinking))).ToArray();
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            // Generation is CPU/GPU-bound and synchronous: off the caller's thread.
            return await Task.Run(() => Generate(prompts, sampling, cancellationToken), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>The whole answer as one update (see the class remarks).</summary>
    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages,
        ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var response = await GetResponseAsync(messages, options, cancellationToken).ConfigureAwait(false);
        foreach (var update in response.ToChatResponseUpdates()) yield return update;
    }

    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null) return null;
        if (serviceType == typeof(ChatClientMetadata)) return _metadata;
        if (serviceType.IsInstanceOfType(this)) return this;
        if (serviceType.IsInstanceOfType(_model)) return _model;
        if (serviceType.IsInstanceOfType(_tokenizer)) return _tokenizer;
        return null;
    }

    public void Dispose()
    {
        if (_ownsModel) _model.Dispose();
        _gate.Dispose();
    }

    IReadOnlyList<ChatResponse> Generate(int[][] prompts, ChatSampling sampling, CancellationToken cancellationToken)
    {
        var responses = new List<ChatResponse>(prompts.Length);
        var wasTraining = _model.training;
        _model.eval();   // no LoRA dropout while answering
        try
        {
            for (int start = 0, batch = 0; start < prompts.Length; start += BatchSize, batch++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var rows = prompts.Skip(start).Take(BatchSize).ToArray();
                var options = GenerationOptions(sampling, batch);
                GenerationResult result;
                using (var step = new Qwen35StepModel(_model))
                    result = new TokenGenerator(step).Generate(rows, options);
                for (var r = 0; r < rows.Length; r++)
                    responses.Add(Response(rows[r].Length, result.NewTokens[r], result.FinishReasons[r], sampling));
                _log?.Debug("chat: batch {Batch}: {Rows} conversations, {Tokens} new tokens", batch, rows.Length, result.NewTokens.Sum(t => t.Length));
            }
        }
        finally
        {
            _model.train(wasTraining);
        }
        return responses;
    }

    GenerationOptions GenerationOptions(ChatSampling s, int batch)
    {
        // A stop text that is exactly one token stops its row in the generator; longer ones are found in the text.
        var vocab = _model.Config.VocabSize;
        var singleTokenStops = s.StopSequences.Select(_tokenizer.Encode).Where(ids => ids.Length == 1 && ids[0] < vocab).Select(ids => ids[0]);
        return new GenerationOptions
        {
            MaxNewTokens = s.MaxOutputTokens,
            DoSample = !s.Greedy,
            Temperature = s.Greedy ? 1.0 : s.Temperature,
            TopP = s.TopP,
            TopK = s.TopK,
            Seed = s.Seed is { } seed ? unchecked(seed + batch) : null,
            StopTokenIds = _stopIds.Concat(singleTokenStops).Distinct().ToArray(),
            PadTokenId = _padId,
        };
    }

    ChatResponse Response(int promptTokens, int[] newTokens, FinishReason reason, ChatSampling sampling)
    {
        // The stop token is not part of the answer (finish_reason says it was produced), nor are ids the tokenizer does
        // not know (a model's vocabulary is often padded past the tokenizer's), as transformers decodes.
        var body = reason == FinishReason.StopToken ? newTokens[..^1] : newTokens;
        var text = _tokenizer.Decode(body.Where(Decodable));
        var (answer, cut) = ChatAnswer.CutAtStop(text, sampling.StopSequences);
        return new ChatResponse(ChatAnswer.Message(answer, sampling.EnableThinking))
        {
            FinishReason = reason == FinishReason.StopToken || cut ? ChatFinishReason.Stop : ChatFinishReason.Length,
            ModelId = _metadata.DefaultModelId,
            CreatedAt = DateTimeOffset.UtcNow,
            Usage = new UsageDetails { InputTokenCount = promptTokens, OutputTokenCount = newTokens.Length, TotalTokenCount = promptTokens + newTokens.Length },
            RawRepresentation = newTokens,   // the generated ids, the stop token included
        };
    }

    bool Decodable(int id)
    {
        if (id < 0 || id >= _tokenizer.VocabSize) return false;
        try
        {
            _tokenizer.Decode([id]);
            return true;
        }
        catch (ArgumentOutOfRangeException)
        {
            return false;   // an id inside the range that no token uses
        }
    }

    static string Render(IEnumerable<ChatMessage> messages, ChatOptions? options, bool thinking)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var list = messages.Select(ToDataMessage).ToList();
        if (!string.IsNullOrEmpty(options?.Instructions))
        {
            if (list.Count > 0 && list[0].Role == Roles.System)
                list[0] = list[0] with { Content = list[0].Content + "\n\n" + options.Instructions };
            else list.Insert(0, new DataMessage(Roles.System, options.Instructions));
        }
        return ChatTemplate.Render(list, new ChatRenderOptions(AddGenerationPrompt: true, EnableThinking: thinking)).Text;
    }

    static DataMessage ToDataMessage(ChatMessage m)
    {
        var role = m.Role == ChatRole.System ? Roles.System
            : m.Role == ChatRole.User ? Roles.User
            : m.Role == ChatRole.Assistant ? Roles.Assistant
            : m.Role == ChatRole.Tool ? Roles.Tool
            : throw new ArgumentException($"chat role '{m.Role.Value}' is not one of system, user, assistant, tool", nameof(m));
        var reasoning = m.Contents.OfType<TextReasoningContent>().Select(c => c.Text).ToArray();
        return new DataMessage(role, m.Text, ReasoningContent: reasoning.Length > 0 ? string.Concat(reasoning) : null);
    }

    static (int[] Stops, int Pad) StopsAndPad(Qwen35ForCausalLM model, ITokenizer tokenizer)
    {
        var vocab = model.Config.VocabSize;
        var stops = model.Config.EosTokenIds.Concat(tokenizer.StopIds).Where(id => id >= 0 && id < vocab).Distinct().ToArray();
        return (stops, tokenizer.PadId < vocab ? tokenizer.PadId : 0);
    }
}
