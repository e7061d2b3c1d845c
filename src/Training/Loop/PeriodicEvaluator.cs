using Qwen35.Data;
using Qwen35.Models;
using Serilog;

namespace Qwen35.Training.Loop;

/// <summary>What a <see cref="IPeriodicEvaluator"/> gets at an evaluation step.</summary>
/// <param name="Model">The model being trained, with its adapter, in eval mode and under no_grad for the call (the loop
/// restores training mode afterwards). Borrowed: never dispose it, never keep it.</param>
/// <param name="Tokenizer">The run's tokenizer.</param>
/// <param name="Step">Optimizer steps completed.</param>
/// <param name="TotalSteps">Optimizer steps of the run.</param>
/// <param name="Log">The run's log.</param>
public sealed record PeriodicEvalContext(Qwen35ForCausalLM Model, ITokenizer Tokenizer, int Step, int TotalSteps, ILogger Log);

/// <summary>
/// An evaluation the training loop runs every <see cref="Every"/> optimizer steps and at the last step (e.g. the
/// safety evaluation of recipe key <c>eval.safety</c>, which lives in the Safety project: Training knows only this
/// interface). The numbers it returns go into that step's metrics.jsonl row under <c>evals</c> and onto loss.png's
/// right axis; keys should be ASCII (the plot's fonts may lack other scripts), e.g. <c>safety/acceptable_rate</c>.
/// </summary>
public interface IPeriodicEvaluator
{
    /// <summary>A short name for the log (e.g. <c>safety</c>).</summary>
    string Name { get; }

    /// <summary>Evaluate every this many optimizer steps; 0 = only at the last step.</summary>
    int Every { get; }

    /// <summary>
    /// Evaluates the model at <see cref="PeriodicEvalContext.Step"/>. An exception is logged as a warning and the run
    /// continues without numbers for that step (a judge endpoint that is down must not cost the training run).
    /// </summary>
    IReadOnlyDictionary<string, double> Evaluate(PeriodicEvalContext context);
}
