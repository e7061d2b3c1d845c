using Qwen35.Models;
using Qwen35.Models.Modules;
using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Training.Loop;

/// <summary>
/// Forward + chunked loss + backward of one micro-batch, either plainly (autograd keeps every layer's activations)
/// or with per-layer activation checkpointing by manual layer-wise recompute (dotnet-stack.md §1 option (b)):
/// run the layers under no_grad keeping only each layer's input, then walk back from the top, re-running one layer
/// at a time with grad and back-propagating into its input. Peak activation memory becomes one layer's worth plus
/// L hidden-state tensors. (Option (a), an autograd.Function, holds an extra empty_like(output) per layer.)
/// </summary>
public static class LossComputation
{
    /// <summary>Returns the (weighted) loss sum of the micro-batch; gradients of that sum × gradScale accumulate.</summary>
    public static double ForwardBackward(Qwen35ForCausalLM model, MicroBatch.Tensors b, double gradScale, bool checkpointing,
        long dropoutSeed, int chunkRows = 1024)
    {
        using var sum = ForwardBackwardOnDevice(model, b, gradScale, checkpointing, dropoutSeed, chunkRows);
        return sum.ToDouble();
    }

    /// <summary>
    /// <see cref="ForwardBackward"/> without the host read: the loss sum stays a detached fp64 scalar on the device
    /// (returned into the caller's dispose scope), so the training loop reads it once per optimizer step.
    /// </summary>
    /// <param name="timer">profiling only (<c>trainer bench --profile</c>): charges the work to phases, per layer type
    /// with checkpointing; null in training.</param>
    public static Tensor ForwardBackwardOnDevice(Qwen35ForCausalLM model, MicroBatch.Tensors b, double gradScale, bool checkpointing,
        long dropoutSeed, int chunkRows = 1024, PhaseTimer? timer = null)
    {
        using var scope = NewDisposeScope();
        T Phase<T>(string name, Func<T> body) => timer is null ? body() : timer.Time(name, body);
        if (!checkpointing)
        {
            Seed(dropoutSeed, b.InputIds.device);
            var hidden = Phase("forward, all layers", () =>
                model.Forward(new ModelInputs(b.InputIds, b.AttentionMask, null, b.SequenceIds, null, b.DocumentOffsets)));
            return Phase("loss (norm, lm_head, CE) + backward, all layers", () =>
            {
                using var sel = ChunkedCrossEntropy.Select(hidden, b.Labels, b.SequenceIds, b.TokenWeights, targetIndex: b.TargetIndex);
                return ChunkedCrossEntropy.SumLossBackwardOnDevice(hidden, sel, model.LmHeadWeight, gradScale, chunkRows);
            }).MoveToOuterDisposeScope();
        }

        var text = model.TextModel;
        var layers = text.layers.ToList();
        var layerInputs = new List<Tensor>(layers.Count);
        LayerContext ctx;
        Tensor top;
        using (no_grad())
        {
            var x = Phase("embed + masks/positions", () => text.embed_tokens.forward(b.InputIds));
            // The same masks, positions and RoPE tables Forward would build, so layer-at-a-time equals Forward.
            ctx = Phase("embed + masks/positions", () =>
                text.BuildContext(new ModelInputs(b.InputIds, b.AttentionMask, null, b.SequenceIds, null, b.DocumentOffsets), x.dtype));
            for (var i = 0; i < layers.Count; i++)
            {
                layerInputs.Add(x);
                // The same seed in the recompute below gives the same dropout masks in both passes.
                Seed(LayerSeed(dropoutSeed, i), x.device);
                var input = x;
                x = Phase($"forward, {layers[i].LayerType}", () => layers[i].forward(input, ctx));
            }
            top = x;
        }

        // Top: final norm + loss, back-propagated into the last layer's output.
        Tensor sum;
        Tensor grad;
        {
            var leaf = top.detach().requires_grad_(true);
            sum = Phase("loss (norm, lm_head, CE) forward + backward", () =>
            {
                var hidden = text.norm.forward(leaf);
                using var sel = ChunkedCrossEntropy.Select(hidden, b.Labels, b.SequenceIds, b.TokenWeights, targetIndex: b.TargetIndex);
                return ChunkedCrossEntropy.SumLossBackwardOnDevice(hidden, sel, model.LmHeadWeight, gradScale, chunkRows);
            });
            grad = leaf.grad!.detach();
        }
        // Layers top-down: recompute with grad, backward with the incoming gradient, pass the input's gradient on.
        for (var i = layers.Count - 1; i >= 0; i--)
        {
            using var layerScope = NewDisposeScope();
            var input = layerInputs[i].detach().requires_grad_(i > 0);
            Seed(LayerSeed(dropoutSeed, i), input.device);
            var layer = layers[i];
            var y = Phase($"recompute, {layer.LayerType}", () => layer.forward(input, ctx));
            if (!y.requires_grad) continue;   // nothing trainable below this point and no input gradient needed
            var incoming = grad;
            Phase($"backward, {layer.LayerType}", () => { y.backward([incoming]); return 0; });
            if (i > 0) grad = input.grad!.detach().MoveToOuterDisposeScope();
        }
        return sum.MoveToOuterDisposeScope();
    }

    static long LayerSeed(long seed, int layer) => unchecked(seed * 1_000_003 + layer + 1);

    /// <summary>Seeds the generators dropout draws from (CPU always; all CUDA devices when training on CUDA).</summary>
    public static void Seed(long seed, Device device)
    {
        torch.manual_seed(seed);
        if (device.type == DeviceType.CUDA) torch.cuda.manual_seed_all(seed);
    }
}
