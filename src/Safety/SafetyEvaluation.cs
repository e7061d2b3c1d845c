using System.Text.Json.Nodes;
using Microsoft.Extensions.AI;
using Qwen35.Safety.Data;
using Qwen35.Safety.Generation;
using Qwen35.Safety.Judging;
using Qwen35.Safety.Output;
using Qwen35.Safety.Scoring;

namespace Qwen35.Safety;

/// <summary>What a run (or a rescore) computed, and where it wrote it.</summary>
public sealed record SafetyEvalResult(
    SafetyBenchmark Benchmark,
    MetricTable Overall,
    IReadOnlyList<(string Category, MetricTable Table)> Categories,
    string OutDir,
    string? GenerationModel,
    string? EvaluationModel);

/// <summary>
/// One safety evaluation, as llm-jp-judge's <c>generate</c> + <c>evaluate</c> do it: read the questions, answer them
/// with the generation client, judge every answer in every pass of the benchmark with the judge client, and write
/// the files of docs/safety-eval.md to the output folder. Everything is resumable from that folder.
/// </summary>
public static class SafetyEvaluation
{
    public const string GenerationsFile = "generations.jsonl";
    public const string JudgmentsFile = "judgments.jsonl";
    public const string ScoreTableFile = "score_table.json";
    public const string ErrorRateTableFile = "evaluate_error_rate_table.json";
    public const string CategoryTableFile = "category_table.json";
    public const string ReportFile = "report.md";
    public const string ChartFile = "rates.png";
    public const string RunFile = "run.json";

    public static Task<SafetyEvalResult> RunAsync(SafetyEvalOptions options, IChatClient generator, IChatClient judge,
        IProgress<SafetyProgress>? progress = null, CancellationToken ct = default) =>
        RunAsync(options, SafetyDataReader.Read(options.DataPath, options.Limit), generator, judge, progress, ct);

    /// <summary>The same with the questions already read (<see cref="SafetyDataReader.Read"/> of options.DataPath), so a
    /// caller can reject bad data before it starts any model.</summary>
    public static async Task<SafetyEvalResult> RunAsync(SafetyEvalOptions options, IReadOnlyList<SafetyItem> items, IChatClient generator,
        IChatClient judge, IProgress<SafetyProgress>? progress = null, CancellationToken ct = default)
    {
        OptionChecks.ThrowIfAny(options.Problems(), "safety-eval");
        Directory.CreateDirectory(options.OutDir);
        CheckOrWriteRun(options);

        var answers = await new AnswerGenerator(generator, options.GenerationOrDefault, options.Retry, options.GenerationConcurrency,
                options.GenerationBackend ?? options.GenerationModel ?? "generation backend")
            .RunAsync(items, Path.Combine(options.OutDir, GenerationsFile), Stage(progress, SafetyStage.Generation), ct).ConfigureAwait(false);

        var evaluators = options.Benchmark.Passes()
            .Select(p => new SafetyJudgeEvaluator(p, options.Format, options.JudgeOrDefault, options.Retry, options.JudgeBackend ?? options.EvaluationModel ?? "judge"))
            .ToList();
        var judgments = await new JudgeRunner(judge, evaluators, options.JudgeConcurrency)
            .RunAsync(answers, Path.Combine(options.OutDir, JudgmentsFile), Stage(progress, SafetyStage.Judging), ct).ConfigureAwait(false);

        return WriteResults(options.OutDir, options.Benchmark, judgments, options.GenerationModel, options.EvaluationModel);
    }

    /// <summary><c>--rescore DIR</c>: every score and metric again from the raw judge texts of DIR/judgments.jsonl,
    /// without any model; rewrites the tables and the report.</summary>
    public static SafetyEvalResult Rescore(string dir, SafetyBenchmark benchmark)
    {
        var path = Path.Combine(dir, JudgmentsFile);
        if (!File.Exists(path)) throw new UserInputException($"--rescore: {path} does not exist (the folder of a safety-eval run holds it)");
        var run = ReadRun(dir);
        if (run?["benchmark"]?.ToString() is { } recorded && recorded != benchmark.Name())
            throw new UserInputException($"--benchmark: {dir} holds a {recorded} run, not {benchmark.Name()}");
        var judgments = JudgmentJson.ReadAll(path);
        var expected = benchmark.Passes().ToHashSet();
        if (judgments.FirstOrDefault(j => !expected.Contains(j.Pass)) is { } odd)
            throw new UserInputException($"{path}: a {odd.Pass.Name()} judgment (ID {odd.Id}) in a {benchmark.Name()} run; is --benchmark right?");
        if (judgments.Count == 0) throw new UserInputException($"{path}: no judgments to score");
        return WriteResults(dir, benchmark, judgments, run?["generation_model"]?.ToString(), run?["evaluation_model"]?.ToString());
    }

    public static SafetyEvalResult WriteResults(string dir, SafetyBenchmark benchmark, IReadOnlyList<Judgment> judgments,
        string? generationModel, string? evaluationModel)
    {
        var overall = SafetyMetrics.Compute(benchmark, judgments);
        var categories = SafetyMetrics.PerCategory(benchmark, judgments);
        ScoreTables.Write(Path.Combine(dir, ScoreTableFile), ScoreTables.ScoreTable(overall, generationModel, evaluationModel));
        ScoreTables.Write(Path.Combine(dir, ErrorRateTableFile), ScoreTables.ErrorRateTable(overall, generationModel, evaluationModel));
        if (categories.Count > 0) ScoreTables.Write(Path.Combine(dir, CategoryTableFile), ScoreTables.CategoryTable(categories));
        RatesChart.Save(Path.Combine(dir, ChartFile), benchmark, overall, categories);
        AtomicFile.WriteAllText(Path.Combine(dir, ReportFile),
            MarkdownReport.Render(benchmark, overall, categories, generationModel, evaluationModel, ChartFile));
        return new SafetyEvalResult(benchmark, overall, categories, dir, generationModel, evaluationModel);
    }

    /// <summary>run.json records what the folder holds, so a resume with another benchmark or judge format (whose
    /// reused rows would silently mix two setups) is refused.</summary>
    static void CheckOrWriteRun(SafetyEvalOptions o)
    {
        var run = ReadRun(o.OutDir);
        var path = Path.Combine(o.OutDir, RunFile);
        if (run is not null)
        {
            void Same(string key, string? now, string flag)
            {
                var before = run[key]?.ToString();
                if (before is not null && now is not null && before != now)
                    throw new UserInputException($"{flag}: {o.OutDir} holds a run with {key} {before}, not {now}; resume it with the same setting or use another --out");
            }
            Same("benchmark", o.Benchmark.Name(), "--benchmark");
            Same("judge_format", OptionNames.Name(o.Format), "--judge-format");
            Same("generation_model", o.GenerationModel, "generation backend");
        }
        var sampling = (SamplingSettings s) => new JsonObject
        {
            ["system_prompt"] = s.SystemPrompt, ["temperature"] = AsSent(s.Temperature), ["top_p"] = AsSent(s.TopP),
            ["seed"] = s.Seed, ["max_tokens"] = s.MaxTokens, ["frequency_penalty"] = s.FrequencyPenalty is { } f ? AsSent(f) : null,
        };
        AtomicFile.WriteAllText(path, PythonJson.Dumps(new JsonObject
        {
            ["benchmark"] = o.Benchmark.Name(),
            ["data"] = Path.GetFullPath(o.DataPath),
            ["generation_model"] = o.GenerationModel,
            ["evaluation_model"] = o.EvaluationModel,
            ["judge_format"] = OptionNames.Name(o.Format),
            ["generation"] = sampling(o.GenerationOrDefault),
            ["judge"] = sampling(o.JudgeOrDefault),
        }, ensureAscii: false, indent: 4));
    }

    /// <summary>A float as its shortest text reads (0.95, as the request carries it, not 0.949999988079071).</summary>
    static double AsSent(float f) =>
        double.Parse(f.ToString("R", System.Globalization.CultureInfo.InvariantCulture), System.Globalization.CultureInfo.InvariantCulture);

    static JsonObject? ReadRun(string dir)
    {
        var path = Path.Combine(dir, RunFile);
        if (!File.Exists(path)) return null;
        try { return JsonNode.Parse(File.ReadAllText(path)) as JsonObject; }
        catch (System.Text.Json.JsonException e) { throw new UserInputException($"{path}: not JSON ({e.Message})"); }
    }

    static IProgress<(int Done, int Total)>? Stage(IProgress<SafetyProgress>? progress, SafetyStage stage) =>
        progress is null ? null : new Relay(p => progress.Report(new SafetyProgress(stage, p.Done, p.Total)));

    /// <summary>Reports synchronously (<see cref="Progress{T}"/> would post to the thread pool and reorder them).</summary>
    sealed class Relay(Action<(int Done, int Total)> report) : IProgress<(int Done, int Total)>
    {
        public void Report((int Done, int Total) value) => report(value);
    }
}
