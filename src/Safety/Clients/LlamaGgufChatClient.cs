using System.Text;
using LLama;
using LLama.Common;
using LLama.Exceptions;
using LLama.Native;
using LLama.Sampling;
using Microsoft.Extensions.AI;

namespace Qwen35.Safety.Clients;

/// <summary>Settings of <see cref="LlamaGgufChatClient"/> beyond the file names.</summary>
/// <param name="ContextSize">Tokens of one conversation's KV cache (prompt + answer); the answer is cut to fit.</param>
/// <param name="GpuLayerCount">Layers offloaded to a GPU backend (0 with the CPU backend).</param>
/// <param name="Threads">llama.cpp threads (null = its default).</param>
/// <param name="LoraScale">Scale of the LoRA GGUF (1 = as trained).</param>
/// <param name="F32Cache">Keep the KV cache in F32 with flash attention off: llama.cpp's default F16 cache moves the
/// logits by about 2e-4 (docs/gguf.md), enough to flip a near tie; on for comparisons, off for speed.</param>
/// <param name="DefaultMaxOutputTokens">Answer length when <see cref="ChatOptions.MaxOutputTokens"/> is null
/// (llm-jp-judge's max_tokens).</param>
public sealed record LlamaGgufOptions(uint ContextSize = 4096, int GpuLayerCount = 0, int? Threads = null, float LoraScale = 1f,
    bool F32Cache = false, int DefaultMaxOutputTokens = 1024);

/// <summary>
/// A GGUF model run by llama.cpp (LLamaSharp 0.30.0), optionally with a LoRA GGUF, as an <see cref="IChatClient"/>.
/// <list type="bullet">
/// <item>The prompt is the GGUF's own chat template applied by llama.cpp (<c>llama_chat_apply_template</c> through
/// <see cref="LLamaTemplate"/>, with the assistant generation prompt). llama.cpp's C API does not run Jinja: it
/// recognises the template (a Qwen template, with <c>&lt;|im_start|&gt;</c>, is ChatML) and renders that format.
/// What Jinja would add for <c>enable_thinking=false</c> it cannot know, so when the template mentions
/// <c>enable_thinking</c> (Qwen3, Qwen3.5) and thinking is off (the default; <see cref="ChatSampling.EnableThinkingKey"/>
/// turns it on) the closed empty think block <c>&lt;think&gt;\n\n&lt;/think&gt;\n\n</c> is appended, exactly what
/// the template renders. Message contents are passed as they are (the Qwen3.5 Jinja template would strip surrounding
/// whitespace).</item>
/// <item>Sampling: Temperature (0 = greedy; null = 1), TopP, TopK, Seed, MaxOutputTokens, StopSequences (cut in the
/// text), in the order of Hugging Face and vLLM (top-k, temperature, top-p, then the seeded draw) and with nothing
/// else: LLamaSharp's DefaultSamplingPipeline would add min-p 0.1 and top-k 40, and its own IChatClient adapter
/// (<c>LLamaExecutorExtensions.AsChatClient</c>) formats <c>User:</c>/<c>Assistant:</c> text, stops at those words,
/// caps answers at 256 tokens and ignores stop sequences, so it is not used here.</item>
/// <item>Generation ends at the vocabulary's end-of-generation tokens (<c>&lt;|im_end|&gt;</c> for Qwen).</item>
/// <item>One conversation at a time (calls are serialised); each call gets a fresh context, so calls never share
/// cache state. Streaming yields the whole answer as one update.</item>
/// </list>
/// The process needs a llama.cpp backend package (LLamaSharp.Backend.Cpu, or a GPU one); without it the constructor
/// throws an <see cref="InvalidOperationException"/> that says so.
/// </summary>
public sealed class LlamaGgufChatClient : IChatClient
{
    const string EmptyThinkBlock = "<think>\n\n</think>\n\n";

    readonly LLamaWeights _weights;
    readonly ModelParams _params;
    readonly LoraAdapter? _lora;
    readonly LlamaGgufOptions _options;
    readonly bool _qwenThinking;
    readonly SemaphoreSlim _gate = new(1, 1);
    readonly ChatClientMetadata _metadata;

    public LlamaGgufChatClient(string ggufPath, string? loraPath = null, LlamaGgufOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(ggufPath);
        _options = options ?? new LlamaGgufOptions();
        if (!File.Exists(ggufPath)) throw new UserInputException($"{ggufPath}: GGUF model file not found");
        if (loraPath is not null && !File.Exists(loraPath)) throw new UserInputException($"{loraPath}: LoRA GGUF file not found");
        try
        {
            _params = new ModelParams(Path.GetFullPath(ggufPath))
            {
                GpuLayerCount = _options.GpuLayerCount,
                ContextSize = _options.ContextSize,
                BatchSize = Math.Min(_options.ContextSize, 512u),
                UBatchSize = Math.Min(_options.ContextSize, 512u),
            };
        }
        catch (TypeInitializationException e)
        {
            // Constructing ModelParams loads the native library (dotnet-ai.md).
            throw new InvalidOperationException("llama.cpp's native library could not be loaded: the application must reference a " +
                                                "LLamaSharp backend package (LLamaSharp.Backend.Cpu 0.30.0, or a GPU backend)", e);
        }
        if (_options.Threads is { } threads) (_params.Threads, _params.BatchThreads) = (threads, threads);
        if (_options.F32Cache) (_params.TypeK, _params.TypeV, _params.FlashAttention) = (GGMLType.GGML_TYPE_F32, GGMLType.GGML_TYPE_F32, false);
        try
        {
            _weights = LLamaWeights.LoadFromFile(_params);
        }
        catch (LoadWeightsFailedException e)
        {
            throw new UserInputException($"{ggufPath}: llama.cpp could not load this GGUF ({e.Message})");
        }
        if (loraPath is not null)
        {
            try
            {
                _lora = _weights.NativeHandle.LoadLoraFromFile(Path.GetFullPath(loraPath));
            }
            catch (RuntimeError e)
            {
                _weights.Dispose();
                throw new UserInputException($"{loraPath}: llama.cpp could not load this LoRA GGUF for {ggufPath} ({e.Message})");
            }
        }
        _qwenThinking = _weights.Metadata.TryGetValue("tokenizer.chat_template", out var template) && template.Contains("enable_thinking", StringComparison.Ordinal);
        var id = Path.GetFileName(ggufPath) + (loraPath is null ? "" : "+" + Path.GetFileName(loraPath));
        _metadata = new ChatClientMetadata("llama.cpp", new Uri(Path.GetFullPath(ggufPath)), id);
    }

    /// <summary>The exact prompt text a conversation is rendered to (what the model is given, before tokenization).</summary>
    public string RenderPrompt(IEnumerable<ChatMessage> messages, ChatOptions? options = null) =>
        Render(messages, options, ChatSampling.From(options, _options.DefaultMaxOutputTokens).EnableThinking);

    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        var sampling = ChatSampling.From(options, _options.DefaultMaxOutputTokens);
        var prompt = Render(messages, options, sampling.EnableThinking);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await Task.Run(() => Generate(prompt, sampling, cancellationToken), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>The whole answer as one update.</summary>
    public IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages,
        ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        LocalChatClient.WholeAnswer(this, messages, options, cancellationToken);

    public object? GetService(Type serviceType, object? serviceKey = null) =>
        LocalChatClient.Service(this, _metadata, serviceType, serviceKey, _weights);

    public void Dispose()
    {
        _lora?.Unload();
        _weights.Dispose();
        _gate.Dispose();
    }

    string Render(IEnumerable<ChatMessage> messages, ChatOptions? options, bool thinking)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var template = new LLamaTemplate(_weights) { AddAssistant = true };
        var list = messages.ToList();
        var hasSystem = list.Count > 0 && list[0].Role == ChatRole.System;
        if (!string.IsNullOrEmpty(options?.Instructions) && !hasSystem) template.Add("system", options.Instructions);
        for (var i = 0; i < list.Count; i++)
        {
            var text = list[i].Text;
            if (i == 0 && hasSystem && !string.IsNullOrEmpty(options?.Instructions)) text += "\n\n" + options.Instructions;
            template.Add(list[i].Role.Value, text);
        }
        var prompt = LLamaTemplate.Encoding.GetString(template.Apply());
        return !thinking && _qwenThinking ? prompt + EmptyThinkBlock : prompt;
    }

    ChatResponse Generate(string prompt, ChatSampling sampling, CancellationToken cancellationToken)
    {
        var vocab = _weights.Vocab;
        var tokens = _weights.Tokenize(prompt, vocab.ShouldAddBOS, special: true, Encoding.UTF8);
        var room = (int)_options.ContextSize - tokens.Length;
        if (room < 1)
            throw new ArgumentException($"the prompt has {tokens.Length} tokens, more than the context of {_options.ContextSize} (LlamaGgufOptions.ContextSize)");
        var max = Math.Min(sampling.MaxOutputTokens, room);

        using var context = _weights.CreateContext(_params);
        if (_lora is { } lora) context.NativeHandle.SetLoraAdapters([(lora, _options.LoraScale)]);
        using var sampler = sampling.Greedy ? (ISamplingPipeline)new GreedySamplingPipeline()
            : new OrderedSampling((float)sampling.Temperature, (float)sampling.TopP, sampling.TopK,
                sampling.Seed is { } seed ? unchecked((uint)seed) : (uint)Random.Shared.Next());

        // Prefill in chunks of the batch size; logits only for the prompt's last token.
        var batch = new LLamaBatch();
        var chunk = (int)_params.BatchSize;
        var logitsAt = 0;
        for (var start = 0; start < tokens.Length; start += chunk)
        {
            batch.Clear();
            var end = Math.Min(start + chunk, tokens.Length);
            for (var i = start; i < end; i++) batch.Add(tokens[i], i, LLamaSeqId.Zero, i == tokens.Length - 1);
            Check(context.Decode(batch), "prefill");
            logitsAt = end - 1 - start;
        }

        var generated = new List<LLamaToken>();
        LLamaToken? stopToken = null;
        for (var k = 0; k < max; k++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            // llama_sampler_sample applies the chain and accepts the token.
            var token = sampler.Sample(context.NativeHandle, logitsAt);
            if (token.IsEndOfGeneration(vocab))
            {
                stopToken = token;
                break;
            }
            generated.Add(token);
            if (k == max - 1) break;
            batch.Clear();
            batch.Add(token, tokens.Length + k, LLamaSeqId.Zero, true);
            Check(context.Decode(batch), "decode");
            logitsAt = 0;
        }

        // Special tokens decode to their text, as this project's tokenizers decode them.
        var decoder = new StreamingTokenDecoder(Encoding.UTF8, _weights) { DecodeSpecialTokens = true };
        decoder.AddRange(generated);
        var (answer, cut) = ChatAnswer.CutAtStop(decoder.Read(), sampling.StopSequences);
        var stopped = stopToken is not null;
        var ids = generated.Concat(stopToken is { } t ? [t] : []).Select(t => (int)t).ToArray();
        return new ChatResponse(ChatAnswer.Message(answer, sampling.EnableThinking))
        {
            FinishReason = stopped || cut ? ChatFinishReason.Stop : ChatFinishReason.Length,
            ModelId = _metadata.DefaultModelId,
            CreatedAt = DateTimeOffset.UtcNow,
            Usage = new UsageDetails { InputTokenCount = tokens.Length, OutputTokenCount = ids.Length, TotalTokenCount = tokens.Length + ids.Length },
            // The generated ids, the stop token included (as TrainerChatClient returns them).
            RawRepresentation = ids,
        };
    }

    static void Check(DecodeResult result, string what)
    {
        if (result != DecodeResult.Ok) throw new InvalidOperationException($"llama.cpp {what}: {result}");
    }

    /// <summary>top-k, temperature, top-p, seeded draw: Hugging Face's and vLLM's order (temperature before top-p
    /// changes which tokens survive top-p; top-k commutes with it).</summary>
    sealed class OrderedSampling(float temperature, float topP, int topK, uint seed) : BaseSamplingPipeline
    {
        protected override SafeLLamaSamplerChainHandle CreateChain(SafeLLamaContextHandle context)
        {
            var chain = SafeLLamaSamplerChainHandle.Create(LLamaSamplerChainParams.Default());
            if (topK > 0) chain.AddTopK(topK);
            chain.AddTemperature(temperature);
            if (topP < 1) chain.AddTopP(topP, 1);
            chain.AddDistributionSampler(seed);
            return chain;
        }
    }
}
