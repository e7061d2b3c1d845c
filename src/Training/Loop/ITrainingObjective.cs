using Qwen35.Models;
using static TorchSharp.torch;

namespace Qwen35.Training.Loop;

/// <summary>
/// What the training loop optimises, as the loop sees it: how much a micro-batch weighs in the step's mean, its
/// forward + backward, and evaluation. Everything else (data position, accumulation, clipping, the NaN guard, the
/// schedule, AdamW, metrics, checkpoints, the adapter) is the loop's and the same for every objective.
/// </summary>
public interface ITrainingObjective
{
    /// <summary>Names of the metrics reported besides the loss, in the order of <see cref="ForwardBackward"/>'s
    /// result after its first entry (TRL's names, e.g. <c>rewards/accuracies</c>); empty for SFT.</summary>
    IReadOnlyList<string> MetricNames { get; }

    /// <summary>What the step's loss is a mean over, for this micro-batch: trained targets (SFT, with category
    /// weights) or preference pairs (DPO). The loop divides every micro-batch's sums by the step's total weight.</summary>
    double Weight(MicroBatch batch);

    /// <summary>Forward + backward of one micro-batch; gradients of (loss sum × <paramref name="gradScale"/>)
    /// accumulate. Returns a detached fp64 vector on the device, in the caller's dispose scope: the loss sum, then
    /// the sum of each of <see cref="MetricNames"/> (sums, so the loop's division by the step's weight makes means).</summary>
    Tensor ForwardBackward(Qwen35ForCausalLM model, MicroBatch batch, MicroBatch.Tensors tensors, double gradScale,
        TrainingForward forward, int chunkRows);

    /// <summary>The eval loss (and metrics) overall and per category, without gradients or dropout.</summary>
    /// <paramref name="comm"/>: the processes of a data-parallel job; an objective may shard the batches over them and
    /// all-reduce its sums, or evaluate all of them on every rank (same result, more work).
    EvalResult Evaluate(Qwen35ForCausalLM model, IReadOnlyList<MicroBatch> batches, IReadOnlyList<string> categories, int chunkRows,
        Qwen35.Distributed.ICommunicator? comm = null);
}

/// <summary>Supervised fine-tuning: the trained tokens' cross-entropy, a mean over the step's trained targets.</summary>
public sealed class SftObjective : ITrainingObjective
{
    public static readonly SftObjective Instance = new();

    public IReadOnlyList<string> MetricNames => [];

    public double Weight(MicroBatch batch) => batch.TargetWeight;

    public Tensor ForwardBackward(Qwen35ForCausalLM model, MicroBatch batch, MicroBatch.Tensors tensors, double gradScale,
        TrainingForward forward, int chunkRows)
    {
        using var sum = LossComputation.ForwardBackwardOnDevice(model, tensors, gradScale, forward.Checkpointing, forward.DropoutSeed, chunkRows);
        return sum.reshape(1);
    }

    public EvalResult Evaluate(Qwen35ForCausalLM model, IReadOnlyList<MicroBatch> batches, IReadOnlyList<string> categories, int chunkRows,
        Qwen35.Distributed.ICommunicator? comm = null) =>
        TrainLoop.Evaluate(model, batches, categories, chunkRows, comm);
}
