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
/// <item>Sampling is per conversation: each row draws from its own generator seeded with
/// <see cref="ChatOptions.Seed"/> (as vLLM seeds each request), so a seeded conversation gets the same answer alone or
/// in any batch, and two calls with the same seed repeat exactly; greedy answers do not depend on the batching either
/// (both up to the rounding of batched matmuls).</item>
/// <item>Streaming yields the whole answer as one update (generation is batched, not token-streamed).</item>
/// <item>Batching: every call joins one queue, and one loop generates the oldest queued conversations, up to
/// <see cref="BatchSize"/> at a time (those with the same MaxOutputTokens and StopSequences). So
/// <see cref="GetResponsesAsync"/> with many conversations and several concurrent <see cref="GetResponseAsync"/> calls
/// (a harness with N calls in flight) are both generated in batches.</item>
/// </list>
/// </summary>
public sealed class TrainerChatClient : IChatClient
{
    readonly Qwen35ForCausalLM _model;
    readonly ITokenizer _tokenizer;
    readonly bool _ownsModel;
    readonly ILogger? _log;
    readonly List<Pending> _queue = [];
    bool _draining;
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
    public const int DefaultBatchSize = 8;

    public int BatchSize { get; init; } = DefaultBatchSize;

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
    /// Answers every conversation, in order, one <see cref="ChatResponse"/> each: they join the queue together and are
    /// generated <see cref="BatchSize"/> at a time. A cancelled call's conversations that have not started are dropped.
    /// </summary>
    public async Task<IReadOnlyList<ChatResponse>> GetResponsesAsync(IReadOnlyList<IEnumerable<ChatMessage>> conversations,
        ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(conversations);
        if (BatchSize < 1) throw new InvalidOperationException($"BatchSize must be >= 1, got {BatchSize}");
        var sampling = ChatSampling.From(options, DefaultMaxOutputTokens);
        // Render and encode up front: a bad conversation fails before any generation.
        var prompts = conversations.Select(c => _tokenizer.Encode(Render(c, options, sampling.EnableThinking))).ToArray();
        var pending = prompts.Select(p => new Pending(p, sampling, BatchKey(sampling), cancellationToken)).ToList();
        lock (_queue)
        {
            _queue.AddRange(pending);
            if (!_draining)
            {
                _draining = true;
                // Generation is CPU/GPU-bound and synchronous: off the callers' threads.
                _ = Task.Run(Drain, CancellationToken.None);
            }
        }
        return await Task.WhenAll(pending.Select(p => p.Done.Task.WaitAsync(cancellationToken))).ConfigureAwait(false);
    }

    /// <summary>The whole answer as one update (see the class remarks).</summary>
    public IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages,
        ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        LocalChatClient.WholeAnswer(this, messages, options, cancellationToken);

    public object? GetService(Type serviceType, object? serviceKey = null) =>
        LocalChatClient.Service(this, _metadata, serviceType, serviceKey, _model, _tokenizer);

    public void Dispose()
    {
        // Calls still queued or running when the client is disposed are the caller's error (as for any IChatClient).
        if (_ownsModel) _model.Dispose();
    }

    /// <summary>One queued conversation: its prompt ids, its sampling and the task its caller awaits.</summary>
    sealed record Pending(int[] Prompt, ChatSampling Sampling, string Key, CancellationToken Cancellation)
    {
        public TaskCompletionSource<ChatResponse> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>Rows of one batch share the decoding length and the stop ids; everything else is per row.</summary>
    static string BatchKey(ChatSampling s) => $"{s.MaxOutputTokens}\u0001{string.Join("\u0001", s.StopSequences)}";

    /// <summary>
    /// The one generation loop: takes the oldest queued conversation and up to <see cref="BatchSize"/> - 1 later ones
    /// that can share its batch, generates, completes their tasks, and repeats until the queue is empty. Concurrent
    /// callers (e.g. a harness with several calls in flight) are thereby batched without knowing of each other.
    /// </summary>
    void Drain()
    {
        while (true)
        {
            List<Pending> batch;
            lock (_queue)
            {
                foreach (var cancelled in _queue.Where(p => p.Cancellation.IsCancellationRequested).ToList())
                {
                    cancelled.Done.TrySetCanceled(cancelled.Cancellation);
                    _queue.Remove(cancelled);
                }
                if (_queue.Count == 0)
                {
                    _draining = false;
                    return;
                }
                var key = _queue[0].Key;
                batch = _queue.Where(p => p.Key == key).Take(BatchSize).ToList();
                foreach (var p in batch) _queue.Remove(p);
            }
            try
            {
                var responses = Generate(batch);
                for (var i = 0; i < batch.Count; i++) batch[i].Done.TrySetResult(responses[i]);
            }
            catch (Exception e)
            {
                foreach (var p in batch) p.Done.TrySetException(e);
            }
        }
    }

    IReadOnlyList<ChatResponse> Generate(IReadOnlyList<Pending> batch)
    {
        var wasTraining = _model.training;
        _model.eval();   // no LoRA dropout while answering
        try
        {
            var rows = batch.Select(p => p.Prompt).ToArray();
            GenerationResult result;
            using (var step = new Qwen35StepModel(_model))
            using (var sampled = new RowSampledStepModel(step, batch.Select(p => p.Sampling).ToArray()))
                result = new TokenGenerator(sampled).Generate(rows, GenerationOptions(batch[0].Sampling));
            _log?.Debug("chat: {Rows} conversations, {Tokens} new tokens", rows.Length, result.NewTokens.Sum(t => t.Length));
            return batch.Select((p, r) => Response(rows[r].Length, result.NewTokens[r], result.FinishReasons[r], p.Sampling)).ToList();
        }
        finally
        {
            _model.train(wasTraining);
        }
    }

    /// <summary>Greedy decoding over the one-hot logits of <see cref="RowSampledStepModel"/>: the token it chose.</summary>
    GenerationOptions GenerationOptions(ChatSampling s)
    {
        // A stop text that is exactly one token stops its row in the generator; longer ones are found in the text.
        var vocab = _model.Config.VocabSize;
        var singleTokenStops = s.StopSequences.Select(_tokenizer.Encode).Where(ids => ids.Length == 1 && ids[0] < vocab).Select(ids => ids[0]);
        return new GenerationOptions
        {
            MaxNewTokens = s.MaxOutputTokens,
            DoSample = false,
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
