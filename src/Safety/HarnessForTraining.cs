using Microsoft.Extensions.AI;
using Qwen35.Safety.Generation;

namespace Qwen35.Safety;

/// <summary>
/// The training-time evaluation (<see cref="TrainingSafetyEval"/>) on the same harness as <c>trainer safety-eval</c>:
/// the same reading, prompts, judge, retries and metrics, so a curve point during training is the number the verb
/// would print for the same answers and judge.
/// </summary>
public sealed class HarnessForTraining : ISafetyHarness
{
    public async Task<IReadOnlyDictionary<string, double?>> RunAsync(SafetyHarnessRequest r, IChatClient generator, IChatClient judge,
        CancellationToken cancellationToken)
    {
        var benchmark = OptionNames.Parse<SafetyBenchmark>(r.Benchmark, "eval.safety.benchmark");
        var options = new SafetyEvalOptions
        {
            Benchmark = benchmark,
            DataPath = r.DataPath,
            OutDir = r.OutDir,
            Limit = r.Items,
            Generation = SamplingSettings.Generation(benchmark) with { Temperature = r.Temperature, TopP = r.TopP, Seed = r.Seed, MaxTokens = r.MaxTokens },
            GenerationConcurrency = r.GenerationConcurrency,
            GenerationModel = r.GenerationModel,
            EvaluationModel = r.EvaluationModel,
        };
        var result = await SafetyEvaluation.RunAsync(options, generator, judge, null, cancellationToken).ConfigureAwait(false);
        return result.Overall.All.ToDictionary(m => m.Key, m => m.Value);
    }
}
