using System.CommandLine;
using System.Diagnostics;
using System.Text.Encodings.Web;
using System.Text.Json;
using Qwen35.Data;
using Qwen35.Models;
using Qwen35.Training;
using Qwen35.Models.Generation;
using static TorchSharp.torch;

namespace Qwen35.Cli.Commands;

/// <summary>
/// <c>trainer generate --model DIR [--adapter DIR] (--prompt TEXT | --prompt-ids 1,2,3) [--max-new-tokens N]
/// [--greedy | --temperature T --top-k K --top-p P --seed S] [--json]</c>: continues one prompt with the model (and
/// an optional LoRA adapter) through <see cref="TokenGenerator"/>. Text prompts need the model folder's tokenizer.json;
/// <c>--chat</c> wraps the prompt in the Qwen3.5 chat template as one user turn. Results go to stdout (the new text,
/// or the new ids when there is no tokenizer; one JSON object with <c>--json</c>), the load report and timings to stderr.
/// </summary>
public static class GenerateCommand
{
    /// <summary>Everything the verb was asked to do; options not given are null.</summary>
    public sealed record Request(
        SessionOptions Session,
        string? Prompt = null,
        string? PromptIds = null,
        bool Chat = false,
        string? System = null,
        bool? EnableThinking = null,
        int MaxNewTokens = 64,
        bool Greedy = false,
        double? Temperature = null,
        int? TopK = null,
        double? TopP = null,
        long? Seed = null,
        string? StopIds = null,
        bool Json = false);

    public static Command Build()
    {
        var session = new SessionFlags();
        var prompt = new Option<string?>("--prompt") { Description = "Prompt text, encoded with the tokenizer (as-is unless --chat)" };
        var promptIds = new Option<string?>("--prompt-ids") { Description = "Prompt as comma-separated token ids, e.g. 1,2,3 (no tokenizer needed)" };
        var chat = new Option<bool>("--chat") { Description = "Render --prompt as one user turn of the Qwen3.5 chat template, with the assistant generation prompt" };
        var system = new Option<string?>("--system") { Description = "System message for --chat" };
        var thinking = new Option<bool?>("--enable-thinking") { Description = "With --chat: true opens a <think> block, false (default) closes an empty one" };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "Most tokens to generate (a stop token counts as one)", DefaultValueFactory = _ => 64 };
        var greedy = new Option<bool>("--greedy") { Description = "Argmax decoding (the default when no sampling option is given)" };
        var temperature = new Option<double?>("--temperature") { Description = "Sampling temperature > 0 (implies sampling; default 1)" };
        var topK = new Option<int?>("--top-k") { Description = "Sample among the K most likely tokens (implies sampling; 0 = all)" };
        var topP = new Option<double?>("--top-p") { Description = "Nucleus sampling mass in (0, 1] (implies sampling)" };
        var seed = new Option<long?>("--seed") { Description = "Seed of the sampler, for repeatable sampling (implies sampling)" };
        var stopIds = new Option<string?>("--stop-ids") { Description = "Extra comma-separated stop token ids (added to the config's eos ids and the tokenizer's <|im_end|>/<|endoftext|>)" };
        var json = new Option<bool>("--json") { Description = "Print one JSON object {\"new_tokens\", \"text\", \"finish_reason\"}" };
        var cmd = new Command("generate", "Generate a continuation of a prompt with a model (and optional LoRA adapter).")
        {
            prompt, promptIds, chat, system, thinking, maxNew, greedy, temperature, topK, topP, seed, stopIds, json,
        };
        session.AddTo(cmd);
        cmd.SetAction(pr => CliErrors.Run("generate", pr.InvocationConfiguration.Error, () => Run(new Request(
                session.Read(pr), pr.GetValue(prompt), pr.GetValue(promptIds),
                pr.GetValue(chat), pr.GetValue(system), pr.GetValue(thinking), pr.GetValue(maxNew), pr.GetValue(greedy),
                pr.GetValue(temperature), pr.GetValue(topK), pr.GetValue(topP), pr.GetValue(seed), pr.GetValue(stopIds),
                pr.GetValue(json)),
            pr.InvocationConfiguration.Output, pr.InvocationConfiguration.Error)));
        return cmd;
    }

    /// <summary>The verb's body; returns the exit code (0 ok, 1 usage error, 2 bad input, 3 runtime failure).</summary>
    public static int Run(Request r, TextWriter stdout, TextWriter stderr)
    {
        GenerationOptions options;
        int[]? ids, extraStops;
        try
        {
            options = Options(r);
            ids = r.PromptIds is null ? null : ParseIds(r.PromptIds, "--prompt-ids");
            extraStops = r.StopIds is null ? [] : ParseIds(r.StopIds, "--stop-ids");
        }
        catch (UsageException e)
        {
            stderr.WriteLine($"generate: usage error: {e.Message}");
            return 1;
        }

        return CliErrors.Run("generate", stderr, () =>
        {
            using var log = CliLog.For("generate", stderr);
            var session = Session.Open(r.Session);
            // The tokenizer comes first: a text prompt without one fails before the (possibly large) model loads.
            var tokenizer = session.TokenizerIfAny;
            if (ids is null && tokenizer is null)
                throw new UserInputException($"{session.ModelDir} has no tokenizer.json, so --prompt cannot be encoded; name one with " +
                                             "--tokenizer DIR, or give the prompt as token ids with --prompt-ids 1,2,3");
            ids ??= tokenizer!.Encode(r.Chat ? ChatPrompt(r) : r.Prompt!);

            using var model = session.LoadModel(log);
            model.eval();
            int vocab = (int)model.Config.VocabSize;
            var source = session.ModelDir ?? Session.BuiltinTiny;
            CheckInVocabulary(ids, vocab, r.PromptIds is null ? "the encoded --prompt" : "--prompt-ids", source);
            CheckInVocabulary(extraStops, vocab, "--stop-ids", source);

            // Stop on the config's eos ids, the tokenizer's end-of-turn/end-of-text ids and anything asked for.
            var stops = model.Config.EosTokenIds.Concat(tokenizer?.StopIds ?? []).Concat(extraStops)
                .Where(id => id >= 0 && id < vocab).Distinct().ToArray();
            int pad = tokenizer is not null && tokenizer.PadId < vocab ? tokenizer.PadId : 0;
            options = options with { StopTokenIds = stops, PadTokenId = pad };
            log.Information("prompt {Tokens} tokens, stop ids [{Stops}], {Mode}", ids.Length, string.Join(",", stops),
                options.DoSample ? $"sampling (temperature {options.Temperature}, top-k {options.TopK}, top-p {options.TopP}, seed {options.Seed?.ToString() ?? "random"})" : "greedy");

            using var stepModel = new Qwen35StepModel(model);
            var timed = new TimedStepModel(stepModel);
            var result = new TokenGenerator(timed).Generate([ids], options);
            var newTokens = result.NewTokens[0];
            var stopped = result.FinishReasons[0] == FinishReason.StopToken;
            log.Information("{Timing}", timed.Summary(ids.Length));

            string? text = null;
            if (tokenizer is not null)
            {
                // The text leaves out the stop token (finish_reason says it was produced) and ids the tokenizer
                // does not know (a model's vocabulary is often padded past the tokenizer's), as transformers does.
                var body = stopped ? newTokens[..^1] : newTokens;
                var known = body.Where(id => Decodable(tokenizer, id)).ToArray();
                if (known.Length < body.Length)
                    log.Warning("{Count} generated id(s) have no token in the tokenizer and are left out of the text", body.Length - known.Length);
                text = tokenizer.Decode(known);
            }
            WriteResult(stdout, r.Json, newTokens, text, stopped ? "stop" : "length");
            return CliErrors.Ok;
        });
    }

    /// <summary>Checks the option combinations and builds the decoding options (StopTokenIds are filled in later).</summary>
    static GenerationOptions Options(Request r)
    {
        if ((r.Prompt is null) == (r.PromptIds is null)) throw new UsageException("give exactly one of --prompt TEXT and --prompt-ids 1,2,3");
        if (r.Prompt is { Length: 0 }) throw new UsageException("--prompt is empty");
        if (!r.Chat && (r.System is not null || r.EnableThinking is not null))
            throw new UsageException("--system and --enable-thinking only apply with --chat");
        if (r.Chat && r.Prompt is null) throw new UsageException("--chat renders a text prompt: use it with --prompt, not --prompt-ids");
        if (r.MaxNewTokens < 1) throw new UsageException($"--max-new-tokens must be at least 1, got {r.MaxNewTokens}");
        bool sample = r.Temperature is not null || r.TopK is not null || r.TopP is not null || r.Seed is not null;
        if (sample && r.Greedy) throw new UsageException("--greedy cannot be combined with --temperature, --top-k, --top-p or --seed");
        if (r.Temperature is { } t && !(t > 0)) throw new UsageException($"--temperature must be > 0, got {t}");
        if (r.TopK is < 0) throw new UsageException($"--top-k must be >= 0 (0 keeps all tokens), got {r.TopK}");
        if (r.TopP is { } p && !(p > 0 && p <= 1)) throw new UsageException($"--top-p must be in (0, 1], got {p}");
        var options = new GenerationOptions
        {
            MaxNewTokens = r.MaxNewTokens,
            DoSample = sample,
            Temperature = r.Temperature ?? 1.0,
            TopK = r.TopK ?? 0,
            TopP = r.TopP ?? 1.0,
            Seed = r.Seed,
        };
        return options;
    }

    /// <summary>The prompt as one user turn (after an optional system turn) plus the assistant generation prompt.</summary>
    static string ChatPrompt(Request r)
    {
        var messages = new List<ChatMessage>();
        if (r.System is not null) messages.Add(new ChatMessage(Roles.System, r.System));
        messages.Add(new ChatMessage(Roles.User, r.Prompt));
        return ChatTemplate.Render(messages, new ChatRenderOptions(AddGenerationPrompt: true, EnableThinking: r.EnableThinking ?? false)).Text;
    }

    static int[] ParseIds(string list, string option)
    {
        var parts = list.Split([',', ' '], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (parts.Length == 0) throw new UsageException($"{option} is empty; expected comma-separated token ids like 1,2,3");
        return parts.Select((p, i) => int.TryParse(p, out var id) && id >= 0 ? id
            : throw new UsageException($"{option}: item {i} '{p}' is not a token id (a non-negative integer)")).ToArray();
    }

    static void CheckInVocabulary(int[] ids, int vocab, string what, string modelDir)
    {
        for (int i = 0; i < ids.Length; i++)
            if (ids[i] >= vocab)
                throw new UserInputException($"{what}: id {ids[i]} at index {i} is outside the vocabulary [0, {vocab}) of {modelDir}");
    }

    static bool Decodable(ITokenizer tokenizer, int id)
    {
        if (id < 0 || id >= tokenizer.VocabSize) return false;
        try { tokenizer.Decode([id]); return true; }
        catch (ArgumentOutOfRangeException) { return false; }   // an id inside the range that no token uses
    }

    static void WriteResult(TextWriter stdout, bool json, int[] newTokens, string? text, string finishReason)
    {
        if (!json)
        {
            // Without a tokenizer the ids are printed in --prompt-ids syntax, so they can be fed back.
            stdout.WriteLine(text ?? string.Join(",", newTokens));
            return;
        }
        var result = new Dictionary<string, object> { ["new_tokens"] = newTokens };
        if (text is not null) result["text"] = text;
        result["finish_reason"] = finishReason;
        // Relaxed escaping keeps non-ASCII text readable; the output is JSON for programs, not HTML.
        stdout.WriteLine(JsonSerializer.Serialize(result, new JsonSerializerOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
    }

    sealed class UsageException(string message) : Exception(message);

    /// <summary>
    /// Times the model calls the generator makes: the first is the prefill of the prompt, each later one decodes one
    /// token. CUDA work is asynchronous, so each call waits for the device before the clock stops.
    /// </summary>
    sealed class TimedStepModel(IStepModel inner) : IStepModel
    {
        TimeSpan prefill, decode;
        int calls;

        public Device Device => inner.Device;

        public Tensor Step(Tensor inputIds, Tensor attentionMask, Tensor positionIds)
        {
            var clock = Stopwatch.StartNew();
            var logits = inner.Step(inputIds, attentionMask, positionIds);
            if (Device.type == TorchSharp.DeviceType.CUDA) cuda.synchronize(Device);
            if (calls++ == 0) prefill = clock.Elapsed; else decode += clock.Elapsed;
            return logits;
        }

        public string Summary(int promptTokens)
        {
            int steps = Math.Max(calls - 1, 0);
            static string Rate(int n, TimeSpan t) => t.TotalSeconds > 0 ? $"{n / t.TotalSeconds:F1} tok/s" : "n/a";
            return $"prefill {promptTokens} tokens in {prefill.TotalSeconds:F3} s ({Rate(promptTokens, prefill)}); " +
                   $"decode {steps} steps in {decode.TotalSeconds:F3} s ({Rate(steps, decode)})";
        }
    }
}
