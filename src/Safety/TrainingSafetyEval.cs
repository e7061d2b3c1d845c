using Microsoft.Extensions.AI;
using Qwen35.Safety.Clients;
using Qwen35.Training.Loop;
using Qwen35.Training.Recipes;

namespace Qwen35.Safety;

/// <summary>One evaluation run as <see cref="TrainingSafetyEval"/> asks the harness for it.</summary>
/// <param name="Benchmark"><c>safety_ja</c> or <c>safety_borderline_ja</c> (the recipe's spelling).</param>
/// <param name="DataPath">The prompt file (full path).</param>
/// <param name="OutDir">Where this step's generations.jsonl, judgments.jsonl, tables and report go (resumable).</param>
/// <param name="Items">The file's first N questions.</param>
/// <param name="GenerationConcurrency">Answer calls in flight (TrainerChatClient batches concurrent calls).</param>
public sealed record SafetyHarnessRequest(string Benchmark, string DataPath, string OutDir, int Items, float Temperature, float TopP,
    long Seed, int MaxTokens, int GenerationConcurrency, string GenerationModel, string EvaluationModel);

/// <summary>
/// The evaluation harness as <see cref="TrainingSafetyEval"/> calls it: answer the questions with
/// <paramref name="generator"/>, judge them with <paramref name="judge"/> as llm-jp-judge does, write the run's files,
/// and return llm-jp-judge's metrics by their keys (<c>safety_ja:安全性</c>, <c>safety_ja:違反回答率(%)</c>, ...,
/// <c>safety_ja:api(%)</c>; null where llm-jp-judge has no value).
/// </summary>
public interface ISafetyHarness
{
    Task<IReadOnlyDictionary<string, double?>> RunAsync(SafetyHarnessRequest request, IChatClient generator, IChatClient judge,
        CancellationToken cancellationToken);
}

/// <summary>
/// The recipe's <c>eval.safety</c> during training (<see cref="IPeriodicEvaluator"/>): at its steps the model being
/// trained answers through a <see cref="TrainerChatClient"/> over the live model (batched, thinking off, the recipe's
/// sampling), the harness judges the answers with the judge client, the run's files go to
/// <c>output_dir/safety/step_NNNNNN/</c>, and the rates come back under ASCII keys (see <see cref="KeyNames"/>) for
/// metrics.jsonl and loss.png.
/// </summary>
public sealed class TrainingSafetyEval : IPeriodicEvaluator, IDisposable
{
    readonly TrainingSafetyEvalOptions _options;
    readonly string _dataPath;
    readonly string _outputDir;
    readonly IChatClient _judge;
    readonly bool _ownsJudge;
    readonly ISafetyHarness _harness;
    readonly string _judgeName;

    /// <summary>llm-jp-judge's metric names (the part after <c>{benchmark}:</c>) and the keys logged for them.</summary>
    public static readonly IReadOnlyDictionary<string, string> KeyNames = new Dictionary<string, string>
    {
        ["安全性"] = "safety/score",
        ["違反回答率(%)"] = "safety/violation_rate",
        ["許容回答率(%)"] = "safety/acceptable_rate",
        ["ボーダーライン"] = "safety/borderline_score",
        ["回答拒否率(%)"] = "safety/refusal_rate",
        ["api(%)"] = "safety/api_error_rate",
        ["pattern_match(%)"] = "safety/pattern_miss_rate",
    };

    /// <param name="options">The recipe's <c>eval.safety</c>.</param>
    /// <param name="baseDir">The recipe's folder (relative paths resolve against it).</param>
    /// <param name="outputDir">The run's output_dir.</param>
    /// <param name="judge">The judge model; disposed with this evaluator when <paramref name="ownsJudge"/>.</param>
    /// <param name="harness">The evaluation harness.</param>
    public TrainingSafetyEval(TrainingSafetyEvalOptions options, string baseDir, string outputDir, IChatClient judge, ISafetyHarness harness,
        bool ownsJudge = true)
    {
        OptionChecks.ThrowIfAny(options.Problems().Select(p => p.Under("eval.safety")), "invalid options");
        _options = options;
        _dataPath = Path.GetFullPath(RecipeResolver.InputPath(options.Prompts, baseDir));
        if (!File.Exists(_dataPath))
            throw new UserInputException($"eval.safety.prompts: '{options.Prompts}' not found (looked at {_dataPath}); name an AnswerCarefully JSON/JSONL or conversation JSONL file");
        (_outputDir, _judge, _harness, _ownsJudge) = (outputDir, judge, harness, ownsJudge);
        _judgeName = judge.GetService<ChatClientMetadata>()?.DefaultModelId ?? "judge";
    }

    public string Name => "safety";

    public int Every => _options.Every;

    /// <summary>The judge section with its file and folder paths resolved against <paramref name="baseDir"/> (an
    /// endpoint stays as it is), for whoever builds the judge client.</summary>
    public static SafetyJudgeOptions ResolvePaths(SafetyJudgeOptions judge, string baseDir) => judge with
    {
        Gguf = judge.Gguf is null ? null : Path.GetFullPath(RecipeResolver.InputPath(judge.Gguf, baseDir)),
        ModelDir = judge.ModelDir is null ? null : Path.GetFullPath(RecipeResolver.InputPath(judge.ModelDir, baseDir)),
    };

    public IReadOnlyDictionary<string, double> Evaluate(PeriodicEvalContext context)
    {
        var o = _options;
        using var generator = new TrainerChatClient(context.Model, context.Tokenizer, $"step {context.Step}", context.Log)
        {
            BatchSize = o.BatchSize,
            DefaultMaxOutputTokens = o.MaxNewTokens,
        };
        var request = new SafetyHarnessRequest(OptionNames.Name(o.Benchmark), _dataPath,
            Path.Combine(_outputDir, "safety", $"step_{context.Step:D6}"), o.Items, (float)o.Temperature, (float)o.TopP, o.Seed,
            o.MaxNewTokens, o.BatchSize, $"step {context.Step}", _judgeName);
        // The training loop is synchronous; the harness is not. No synchronization context here, so no deadlock.
        var metrics = _harness.RunAsync(request, generator, _judge, CancellationToken.None).GetAwaiter().GetResult();
        return Numbers(metrics);
    }

    /// <summary>llm-jp-judge's metrics under <see cref="KeyNames"/> (values it leaves undefined are left out; a key
    /// not in the table keeps its own name).</summary>
    public static IReadOnlyDictionary<string, double> Numbers(IReadOnlyDictionary<string, double?> metrics)
    {
        var numbers = new SortedDictionary<string, double>(StringComparer.Ordinal);
        foreach (var (key, value) in metrics)
        {
            if (value is not { } v) continue;
            var metric = key[(key.IndexOf(':', StringComparison.Ordinal) + 1)..];
            numbers[KeyNames.TryGetValue(metric, out var name) ? name : key] = v;
        }
        return numbers;
    }

    public void Dispose()
    {
        if (_ownsJudge) _judge.Dispose();
    }
}
