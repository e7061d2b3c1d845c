using Qwen35.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Training.Loop;

/// <summary>
/// Forward + chunked loss + backward of one micro-batch: the model runs its forward and backward (plainly, or with
/// per-layer activation checkpointing, <see cref="TrainingForward"/>) and calls back here for the loss at the top.
/// </summary>
public static class LossComputation
{
    /// <summary>Returns the (weighted) loss sum of the micro-batch; gradients of that sum × gradScale accumulate.</summary>
    public static double ForwardBackward(Qwen35ForCausalLM model, MicroBatch.Tensors b, double gradScale, bool checkpointing,
        long dropoutSeed, int chunkRows = ChunkedCrossEntropy.AutoChunkRows)
    {
        using var sum = ForwardBackwardOnDevice(model, b, gradScale, checkpointing, dropoutSeed, chunkRows);
        return sum.ToDouble();
    }

    /// <summary>
    /// <see cref="ForwardBackward"/> without the host read: the loss sum stays a detached fp64 scalar on the device
    /// (returned into the caller's dispose scope), so the training loop reads it once per optimizer step.
    /// </summary>
    /// <param name="observer">profiling only (<c>trainer bench --profile</c>): the model charges its work to phases,
    /// per layer type with checkpointing; null in training.</param>
    public static Tensor ForwardBackwardOnDevice(Qwen35ForCausalLM model, MicroBatch.Tensors b, double gradScale, bool checkpointing,
        long dropoutSeed, int chunkRows = ChunkedCrossEntropy.AutoChunkRows, IPhaseObserver? observer = null)
    {
        using var scope = NewDisposeScope();
        var sum = model.ForwardBackward(b.Inputs, hidden =>
        {
            using var sel = ChunkedCrossEntropy.Select(hidden, b.Labels, b.TargetIndex, b.TokenWeights);
            return ChunkedCrossEntropy.SumLossBackwardOnDevice(hidden, sel, model.LmHeadWeight, gradScale, chunkRows);
        }, new TrainingForward(checkpointing, dropoutSeed, observer));
        return sum.MoveToOuterDisposeScope();
    }
}
