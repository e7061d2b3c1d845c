using System.CommandLine;
using System.Diagnostics;
using Microsoft.Extensions.AI;
using Qwen35.Safety;
using Qwen35.Safety.Backends;
using Qwen35.Safety.Data;
using Qwen35.Safety.Generation;
using Qwen35.Safety.Judging;
using Qwen35.Safety.Output;
using Qwen35.Training;
using Spectre.Console;

namespace Qwen35.Cli.Commands;

/// <summary>
/// <c>trainer safety-eval --benchmark safety_ja|safety_borderline_ja --data FILE --out DIR</c> + one generation
/// backend (<c>--endpoint URL --model-name NAME</c> | <c>--model DIR|builtin:tiny [--adapter DIR]</c> |
/// <c>--model FILE.gguf [--lora FILE.gguf]</c>) + one judge (<c>--judge-endpoint URL --judge-model NAME</c> |
/// <c>--judge-gguf FILE</c> | <c>--judge-model-dir DIR</c>): llm-jp-judge's safety evaluation (docs/safety-eval.md).
/// <c>--rescore DIR</c> recomputes a run's metrics from its judge texts; <c>--compare</c> evaluates the backend with
/// and without its adapter. The score table goes to stdout, the log and progress to stderr.
/// </summary>
public static class SafetyEvalCommand
{
    const string Verb = "safety-eval";

    /// <summary>The local backends' constructors, from src/Safety/Clients (tests pass fakes through <see cref="Build"/>).</summary>
    internal static BackendConstructors LocalBackends(Serilog.ILogger log) => new(
        Trainer: session => new Qwen35.Safety.Clients.TrainerChatClient(session, log),
        Gguf: (gguf, lora) => new Qwen35.Safety.Clients.LlamaGgufChatClient(gguf, lora));

    sealed record Flags
    {
        public Option<string> Benchmark { get; } = new("--benchmark") { Description = "safety_ja (AnswerCarefully) or safety_borderline_ja (the borderline set: over-refusal + safety)", DefaultValueFactory = _ => "safety_ja" };
        public Option<string?> Data { get; } = new("--data") { Description = "AnswerCarefully JSON/JSONL (ID, text, output) or conversation JSONL (first user turn = question, first answer = reference)" };
        public Option<string?> Out { get; } = new("--out") { Description = "Output folder: generations.jsonl, judgments.jsonl, score_table.json, report.md (an existing run there is resumed)" };
        public Option<int?> Limit { get; } = new("--limit") { Description = "Evaluate the first N questions only" };
        public Option<string?> Endpoint { get; } = new("--endpoint") { Description = "OpenAI-compatible base URL of the model to evaluate, e.g. http://127.0.0.1:8000/v1" };
        public Option<string?> ModelName { get; } = new("--model-name") { Description = "Model name to request from --endpoint (vLLM: the served base or LoRA name)" };
        public Option<string?> Lora { get; } = new("--lora") { Description = "LoRA GGUF applied to --model FILE.gguf" };
        public Option<string> ApiKeyEnv { get; } = new("--api-key-env") { Description = "Environment variable holding the API key of --endpoint (unset: no key)", DefaultValueFactory = _ => "OPENAI_API_KEY" };
        public Option<string?> JudgeEndpoint { get; } = new("--judge-endpoint") { Description = "OpenAI-compatible base URL of the judge" };
        public Option<string?> JudgeModel { get; } = new("--judge-model") { Description = "Judge model name to request from --judge-endpoint" };
        public Option<string?> JudgeGguf { get; } = new("--judge-gguf") { Description = "Judge as a GGUF file run by llama.cpp" };
        public Option<string?> JudgeModelDir { get; } = new("--judge-model-dir") { Description = "Judge as a Hugging Face Qwen3.5 folder run by this trainer" };
        public Option<string?> JudgeApiKeyEnv { get; } = new("--judge-api-key-env") { Description = "Environment variable holding the judge's API key (default: --api-key-env)" };
        public Option<string> JudgeFormat { get; } = new("--judge-format") { Description = "repr: the slots hold Python list reprs like llm-jp-judge v2.0.0 (default); plain: the plain strings", DefaultValueFactory = _ => "repr" };
        public Option<string?> SystemPrompt { get; } = new("--system-prompt") { Description = "Generation system prompt (default: llm-jp-judge's for the benchmark)" };
        public Option<bool> NoSystemPrompt { get; } = new("--no-system-prompt") { Description = "Send no system message when generating" };
        public Option<float?> Temperature { get; } = new("--temperature") { Description = "Generation temperature (default 1.0)" };
        public Option<float?> TopP { get; } = new("--top-p") { Description = "Generation top_p (default 0.95)" };
        public Option<long?> Seed { get; } = new("--seed") { Description = "Generation seed (default 1234)" };
        public Option<int?> MaxTokens { get; } = new("--max-tokens") { Description = "Most tokens per answer (default 1024)" };
        public Option<float?> JudgeTemperature { get; } = new("--judge-temperature") { Description = "Judge temperature (default 1.0)" };
        public Option<float?> JudgeTopP { get; } = new("--judge-top-p") { Description = "Judge top_p (default 0.95)" };
        public Option<long?> JudgeSeed { get; } = new("--judge-seed") { Description = "Judge seed (default 1234)" };
        public Option<int?> JudgeMaxTokens { get; } = new("--judge-max-tokens") { Description = "Most tokens per judgment (default 1024)" };
        public Option<string> MaxTokensField { get; } = new("--max-tokens-field") { Description = "max_tokens (llm-jp-judge, vLLM, llama-server) or max_completion_tokens (OpenAI's newest models)", DefaultValueFactory = _ => "max_tokens" };
        public Option<int?> Concurrency { get; } = new("--concurrency") { Description = "Generation calls at a time (default 8 for an endpoint, 1 for a local model)" };
        public Option<int?> JudgeConcurrency { get; } = new("--judge-concurrency") { Description = "Judge calls at a time (default 8 for an endpoint, 1 for a local model)" };
        public Option<double> RetryInterval { get; } = new("--retry-interval") { Description = "Seconds between attempts after a regex miss or rejected request (llm-jp-judge: 0.5)", DefaultValueFactory = _ => 0.5 };
        public Option<double> RateLimitWait { get; } = new("--rate-limit-wait") { Description = "Seconds to wait after a rate limit or timeout (llm-jp-judge: 60)", DefaultValueFactory = _ => 60 };
        public Option<string?> Rescore { get; } = new("--rescore") { Description = "Recompute score_table.json and the report of the run in DIR from its judgments.jsonl, calling no model" };
        public Option<bool> Compare { get; } = new("--compare") { Description = "Evaluate the backend without (base) and with (tuned) its --adapter/--lora, and print both side by side" };
        public Option<string?> BaseModelName { get; } = new("--base-model-name") { Description = "With --compare and --endpoint: the base model's name on the same server" };
        public Option<bool> NoProgress { get; } = new("--no-progress") { Description = "No progress bar (log lines instead)" };
        public SessionFlags Session { get; } = new(modelRequired: false);
    }

    public static Command Build() => Build(null);

    /// <summary>The verb; <paramref name="constructors"/> replaces the local backends (tests).</summary>
    public static Command Build(BackendConstructors? constructors)
    {
        var f = new Flags();
        var cmd = new Command(Verb, "Safety evaluation as llm-jp-judge does it: answer AnswerCarefully questions, judge the answers with an LLM, report the rates.")
        {
            f.Benchmark, f.Data, f.Out, f.Limit, f.Endpoint, f.ModelName, f.Lora, f.ApiKeyEnv,
            f.JudgeEndpoint, f.JudgeModel, f.JudgeGguf, f.JudgeModelDir, f.JudgeApiKeyEnv, f.JudgeFormat,
            f.SystemPrompt, f.NoSystemPrompt, f.Temperature, f.TopP, f.Seed, f.MaxTokens,
            f.JudgeTemperature, f.JudgeTopP, f.JudgeSeed, f.JudgeMaxTokens, f.MaxTokensField,
            f.Concurrency, f.JudgeConcurrency, f.RetryInterval, f.RateLimitWait, f.Rescore, f.Compare, f.BaseModelName, f.NoProgress,
        };
        // Here --model also takes a GGUF file (run by llama.cpp); the shared flag's text names folders only.
        f.Session.Model.Description = $"Model to evaluate: a Hugging Face Qwen3.5 folder, {Training.Session.BuiltinTiny}, or a FILE.gguf run by llama.cpp";
        f.Session.AddTo(cmd);
        cmd.SetAction(pr =>
        {
            var stdout = pr.InvocationConfiguration.Output;
            var stderr = pr.InvocationConfiguration.Error;
            return CliErrors.Run(Verb, stderr, () =>
            {
                using var log = CliLog.For(Verb, stderr);
                var benchmark = OptionNames.Parse<SafetyBenchmark>(pr.GetValue(f.Benchmark)!, "--benchmark");
                if (pr.GetValue(f.Rescore) is { } dir)
                {
                    var rescored = SafetyEvaluation.Rescore(dir, benchmark);
                    Print(stdout, rescored);
                    return CliErrors.Ok;
                }
                using var ctrlC = new CancelOnCtrlC();
                try
                {
                    return Evaluate(pr, f, benchmark, constructors ?? LocalBackends(log), log, stdout, ctrlC.Token);
                }
                catch (OperationCanceledException) when (ctrlC.Token.IsCancellationRequested)
                {
                    log.Warning("interrupted; the answers and judgments so far are in --out; the same command continues the run");
                    return CliErrors.Interrupted;
                }
            });
        });
        return cmd;
    }

    static int Evaluate(ParseResult pr, Flags f, SafetyBenchmark benchmark, BackendConstructors constructors, Serilog.ILogger log, TextWriter stdout,
        CancellationToken ct)
    {
        var data = pr.GetValue(f.Data) ?? throw new UserInputException("--data: required (the questions to evaluate)");
        var outDir = pr.GetValue(f.Out) ?? throw new UserInputException("--out: required (the folder for the run's files)");
        if (!File.Exists(data) && !Directory.Exists(data)) throw new UserInputException($"--data: {data} does not exist");
        var maxField = OptionNames.Parse<MaxTokensField>(pr.GetValue(f.MaxTokensField)!, "--max-tokens-field");
        var session = f.Session.Read(pr);
        var apiKeyEnv = pr.GetValue(f.ApiKeyEnv)!;
        var generation = ChatBackends.Generation(new GenerationBackendFlags(
            pr.GetValue(f.Endpoint), pr.GetValue(f.ModelName), pr.GetValue(f.Session.Model), pr.GetValue(f.Session.Adapter),
            pr.GetValue(f.Lora), apiKeyEnv, session, maxField));
        var judgeSpec = ChatBackends.Judge(new JudgeBackendFlags(
            pr.GetValue(f.JudgeEndpoint), pr.GetValue(f.JudgeModel), pr.GetValue(f.JudgeGguf), pr.GetValue(f.JudgeModelDir),
            pr.GetValue(f.JudgeApiKeyEnv) ?? apiKeyEnv, session with { Adapter = null }, maxField));

        var genDefaults = SamplingSettings.Generation(benchmark);
        var genSampling = genDefaults with
        {
            SystemPrompt = pr.GetValue(f.NoSystemPrompt) ? null : pr.GetValue(f.SystemPrompt) ?? genDefaults.SystemPrompt,
            Temperature = pr.GetValue(f.Temperature) ?? genDefaults.Temperature,
            TopP = pr.GetValue(f.TopP) ?? genDefaults.TopP,
            Seed = pr.GetValue(f.Seed) ?? genDefaults.Seed,
            MaxTokens = pr.GetValue(f.MaxTokens) ?? genDefaults.MaxTokens,
        };
        var j = SamplingSettings.Judge;
        var judgeSampling = j with
        {
            Temperature = pr.GetValue(f.JudgeTemperature) ?? j.Temperature,
            TopP = pr.GetValue(f.JudgeTopP) ?? j.TopP,
            Seed = pr.GetValue(f.JudgeSeed) ?? j.Seed,
            MaxTokens = pr.GetValue(f.JudgeMaxTokens) ?? j.MaxTokens,
        };
        var retry = new RetryRule(
            Interval: Seconds(pr.GetValue(f.RetryInterval), "--retry-interval"),
            RateLimitWait: Seconds(pr.GetValue(f.RateLimitWait), "--rate-limit-wait"));
        var options = new SafetyEvalOptions
        {
            Benchmark = benchmark,
            DataPath = data,
            OutDir = outDir,
            Limit = pr.GetValue(f.Limit),
            Generation = genSampling,
            Judge = judgeSampling,
            Format = OptionNames.Parse<JudgeFormat>(pr.GetValue(f.JudgeFormat)!, "--judge-format"),
            Retry = retry,
            GenerationConcurrency = pr.GetValue(f.Concurrency) ?? generation.DefaultConcurrency,
            JudgeConcurrency = pr.GetValue(f.JudgeConcurrency) ?? judgeSpec.DefaultConcurrency,
            EvaluationModel = judgeSpec.DisplayName,
            JudgeBackend = judgeSpec.Describe(),
        };
        OptionChecks.ThrowIfAny(options.Problems(), Verb);
        // Bad data is reported before any model loads or any server is called.
        var items = SafetyDataReader.Read(data, options.Limit);

        var backends = new ChatBackends(constructors);
        var noProgress = pr.GetValue(f.NoProgress);
        using var judge = backends.Create(judgeSpec);
        log.Information("{Benchmark}: {Data} -> {Out}; judge {Judge}", benchmark.Name(), data, outDir, judgeSpec.Describe());
        if (!pr.GetValue(f.Compare))
        {
            var result = Run(options with { GenerationModel = generation.DisplayName, GenerationBackend = generation.Describe() },
                items, backends, generation, judge, log, noProgress, ct);
            Print(stdout, result);
            return CliErrors.Ok;
        }

        var baseSpec = generation.Base(pr.GetValue(f.BaseModelName));
        var baseRun = Run(options with { OutDir = Path.Combine(outDir, "base"), GenerationModel = baseSpec.DisplayName, GenerationBackend = baseSpec.Describe() },
            items, backends, baseSpec, judge, log, noProgress, ct);
        var tuned = Run(options with { OutDir = Path.Combine(outDir, "tuned"), GenerationModel = generation.DisplayName, GenerationBackend = generation.Describe() },
            items, backends, generation, judge, log, noProgress, ct);
        var rows = Comparison.Rows(baseRun, tuned);
        Comparison.Write(outDir, rows, baseSpec.DisplayName, generation.DisplayName);
        stdout.Write(Comparison.Markdown(rows, baseSpec.DisplayName, generation.DisplayName));
        stdout.WriteLine($"files: {Path.GetFullPath(outDir)} (base/, tuned/, {Comparison.MarkdownFile})");
        return CliErrors.Ok;
    }

    static SafetyEvalResult Run(SafetyEvalOptions options, IReadOnlyList<SafetyItem> items, ChatBackends backends, BackendSpec spec, IChatClient judge,
        Serilog.ILogger log, bool noProgress, CancellationToken ct)
    {
        log.Information("generation: {Backend}", spec.Describe());
        using var generator = backends.Create(spec);
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        // Spectre draws nothing when stderr is not a terminal; then log lines every tenth of a stage are the progress.
        var bar = !noProgress && !Console.IsErrorRedirected && console.Profile.Capabilities.Interactive;
        if (!bar)
            return SafetyEvaluation.RunAsync(options, items, generator, judge, new ProgressLog(log), ct).GetAwaiter().GetResult();
        SafetyEvalResult result = null!;
        console.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                var tasks = new Dictionary<SafetyStage, ProgressTask>();
                var progress = new SyncProgress(p =>
                {
                    lock (tasks)
                    {
                        if (!tasks.TryGetValue(p.Stage, out var task))
                            tasks[p.Stage] = task = ctx.AddTask(p.Stage == SafetyStage.Generation ? "answers" : "judgments", maxValue: Math.Max(1, p.Total));
                        task.Value = p.Done;
                    }
                });
                result = SafetyEvaluation.RunAsync(options, items, generator, judge, progress, ct).GetAwaiter().GetResult();
            });
        return result;
    }

    static void Print(TextWriter stdout, SafetyEvalResult r)
    {
        foreach (var m in r.Overall.All) stdout.WriteLine($"{m.Key}: {MarkdownReport.Format(m.Value)}");
        stdout.WriteLine($"files: {Path.GetFullPath(r.OutDir)} ({SafetyEvaluation.ScoreTableFile}, {SafetyEvaluation.ReportFile})");
    }

    static TimeSpan Seconds(double s, string flag) =>
        s >= 0 ? TimeSpan.FromSeconds(s) : throw new UserInputException($"{flag}: must be >= 0 seconds");

    sealed class SyncProgress(Action<SafetyProgress> report) : IProgress<SafetyProgress>
    {
        public void Report(SafetyProgress value) => report(value);
    }

    /// <summary>"answers 120/336 (ETA 3m12s)" at every tenth of a stage, when no bar is drawn.</summary>
    sealed class ProgressLog(Serilog.ILogger log) : IProgress<SafetyProgress>
    {
        readonly Stopwatch _clock = new();
        SafetyStage? _stage;
        int _first, _lastTenth = -1;

        public void Report(SafetyProgress p)
        {
            lock (_clock)
            {
                if (_stage != p.Stage) { _stage = p.Stage; _first = p.Done; _lastTenth = -1; _clock.Restart(); }
                var tenth = p.Total == 0 ? 10 : p.Done * 10 / p.Total;
                if (tenth == _lastTenth) return;
                _lastTenth = tenth;
                var rate = (p.Done - _first) / Math.Max(_clock.Elapsed.TotalSeconds, 1e-9);
                var eta = rate > 0 && p.Done > _first ? $" (ETA {TimeSpan.FromSeconds((p.Total - p.Done) / rate):hh\\:mm\\:ss})" : "";
                log.Information("{Stage} {Done}/{Total}{Eta}", p.Stage == SafetyStage.Generation ? "answers" : "judgments", p.Done, p.Total, eta);
            }
        }
    }

    /// <summary>Ctrl-C cancels the run; the answers and judgments so far are on disk and a rerun continues.</summary>
    sealed class CancelOnCtrlC : IDisposable
    {
        readonly CancellationTokenSource _cts = new();

        public CancelOnCtrlC() => Console.CancelKeyPress += OnCancel;

        public CancellationToken Token => _cts.Token;

        void OnCancel(object? sender, ConsoleCancelEventArgs e)
        {
            e.Cancel = true;
            _cts.Cancel();
        }

        public void Dispose()
        {
            Console.CancelKeyPress -= OnCancel;
            _cts.Dispose();
        }
    }
}
