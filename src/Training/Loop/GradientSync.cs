using Qwen35.Distributed;
using TorchSharp.Modules;

namespace Qwen35.Training.Loop;

/// <summary>
/// Sums the LoRA gradients over the ranks of a data-parallel job, once per optimizer step (not per micro-batch). The
/// trainer's optimizer (<see cref="LoraAdamW"/>) holds one flat parameter, so this is ONE all-reduce of the one
/// gradient buffer, in place. Each rank's gradients are its micro-batches' losses divided by the whole step's weight,
/// so the sum is the gradient a single process would have accumulated.
/// </summary>
public static class GradientSync
{
    public static void AllReduce(IReadOnlyList<Parameter> parameters, ICommunicator comm)
    {
        if (comm.WorldSize == 1) return;
        // Every rank ran at least one micro-batch (the loop deals at least one to each), so every gradient exists.
        foreach (var p in parameters)
            comm.AllReduceSum(p.grad ?? throw new InvalidOperationException("a LoRA parameter has no gradient after the backward pass"));
    }
}
