using Qwen35.Lora;
using TorchSharp;
using TorchSharp.Modules;

namespace Qwen35.Training.Loop;

/// <summary>
/// AdamW over the LoRA parameters stored flat (<see cref="FlatLoraParameters"/>): the optimizer holds ONE parameter,
/// the flat buffer, so its step is a handful of native operations on two moment buffers of the same size instead of
/// several per tensor, and clipping, the NaN check and zeroing in <see cref="TrainLoop"/> work on the one gradient
/// buffer. Weight decay applies to every LoRA tensor, as it did per tensor (there was one parameter group, no
/// exclusions). Checkpoints keep their per-parameter layout (<c>CheckpointStore</c> slices the flat moments).
/// </summary>
public static class LoraAdamW
{
    /// <summary>Moves <paramref name="trainable"/> into flat storage (same Parameter objects, now views) and returns
    /// AdamW over the flat buffer.</summary>
    public static AdamW Create(IReadOnlyList<(string Name, Parameter Param)> trainable, double lr, double beta1 = 0.9,
        double beta2 = 0.999, double eps = 1e-8, double weightDecay = 0.01)
    {
        var flat = FlatLoraParameters.Create(trainable);
        return torch.optim.AdamW([flat.Values], lr: lr, beta1: beta1, beta2: beta2, eps: eps, weight_decay: weightDecay);
    }

    /// <summary>The parameters an optimizer updates, in its order (for a <see cref="Create"/>d one: the flat buffer).</summary>
    public static List<Parameter> Parameters(AdamW optimizer) =>
        optimizer.parameters().ToList();

    /// <summary>The flat storage behind an optimizer made by <see cref="Create"/>, else null (per-tensor AdamW). A
    /// data-parallel step all-reduces its <see cref="FlatLoraParameters.Grads"/>.</summary>
    public static FlatLoraParameters? Flat(AdamW optimizer) =>
        Parameters(optimizer) is [var only] ? FlatLoraParameters.Of(only) : null;
}
