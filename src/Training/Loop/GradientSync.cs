using Qwen35.Distributed;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Qwen35.Training.Loop;

/// <summary>
/// Sums the LoRA gradients over the ranks of a data-parallel job: all of them in ONE flat buffer, one all-reduce per
/// optimizer step (not per parameter, not per micro-batch). Each rank's gradients are its micro-batches' losses divided
/// by the whole step's target count, so the sum is the gradient a single process would have accumulated.
/// </summary>
public static class GradientSync
{
    public static void AllReduce(IReadOnlyList<Parameter> parameters, ICommunicator comm)
    {
        if (comm.WorldSize == 1) return;
        using var scope = NewDisposeScope();
        // Every rank ran at least one micro-batch (the loop deals at least one to each), so every gradient exists.
        var grads = parameters.Select(p => p.grad ?? throw new InvalidOperationException("a LoRA parameter has no gradient after the backward pass")).ToList();
        // Flat LoRA storage (LoraAdamW): the optimizer's one parameter, whose gradient is already the one buffer.
        if (grads is [{ } only] && only.is_contiguous())
        {
            comm.AllReduceSum(only);
            return;
        }
        var flat = cat(grads.Select(g => g.flatten()).ToList());
        comm.AllReduceSum(flat);
        long offset = 0;
        foreach (var g in grads)
        {
            g.copy_(flat.narrow(0, offset, g.numel()).view_as(g));
            offset += g.numel();
        }
    }
}
