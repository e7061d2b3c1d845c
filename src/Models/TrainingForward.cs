namespace Qwen35.Models;

/// <summary>
/// Observes the phases of a training forward + backward (<see cref="Qwen35ForCausalLM.ForwardBackward"/>), e.g. to
/// time them (<c>trainer bench --profile</c>). <see cref="Time"/> must run <c>body</c> exactly once and nothing
/// else that touches the model, so an observed step is bitwise the same as an unobserved one.
/// </summary>
public interface IPhaseObserver
{
    /// <summary>Runs <paramref name="body"/>, charging it to <paramref name="phase"/>.</summary>
    void Time(string phase, Action body);
}

/// <summary>How <see cref="Qwen35ForCausalLM.ForwardBackward"/> runs.</summary>
/// <param name="Checkpointing">per-layer activation checkpointing: run the layers under no_grad keeping only each
/// layer's input, compute the loss and its backward at the top, then recompute each layer with grad top-down and
/// back-propagate through it. Peak activation memory becomes one layer's worth plus L hidden-state tensors.</param>
/// <param name="DropoutSeed">seeds the dropout generators: once before a plain forward, and per layer (the same
/// seed in the first pass and the recompute, so both draw the same masks) with checkpointing.</param>
/// <param name="Observer">phase hook for profiling; null in training.</param>
public sealed record TrainingForward(bool Checkpointing = false, long DropoutSeed = 0, IPhaseObserver? Observer = null);
