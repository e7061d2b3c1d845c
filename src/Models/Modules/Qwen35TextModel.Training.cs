using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Models.Modules;

/// <summary>Training's forward + backward, optionally with per-layer activation checkpointing.</summary>
public sealed partial class Qwen35TextModel
{
    /// <summary>
    /// Forward, then <paramref name="headLossBackward"/> on the final-normed hidden states [B, T, h] (it computes the
    /// loss, back-propagates it into the hidden states and returns the loss, e.g. a detached scalar), then the backward
    /// through the layers. Returns what <paramref name="headLossBackward"/> returned, in the caller's dispose scope.
    /// <para>With <see cref="TrainingForward.Checkpointing"/> this is manual layer-wise recompute (docs/training.md,
    /// "Precision and activation checkpointing"): the layers run under no_grad keeping only each layer's input; the top
    /// (final norm + loss) is back-propagated into a leaf holding the last layer's output; then, top-down, each layer
    /// is re-run with grad from its kept input and back-propagated with the incoming gradient, handing its input's
    /// gradient on. (The alternative, an autograd.Function, holds an extra empty_like(output) per layer.) Each layer is
    /// seeded the same in both passes, so its dropout masks and hence the gradients equal the plain path's
    /// computation.</para>
    /// </summary>
    public Tensor ForwardBackward(ModelInputs inputs, Func<Tensor, Tensor> headLossBackward, TrainingForward options)
    {
        using var scope = NewDisposeScope();
        var observer = options.Observer;
        T Phase<T>(string name, Func<T> body)
        {
            if (observer is null) return body();
            var result = default(T)!;
            observer.Time(name, () => result = body());
            return result;
        }

        if (!options.Checkpointing)
        {
            SeedDropout(options.DropoutSeed, inputs.InputIds.device);
            var hidden = Phase("forward, all layers", () => Forward(inputs, null));
            return Phase("loss (norm, lm_head, CE) + backward, all layers", () => headLossBackward(hidden)).MoveToOuterDisposeScope();
        }

        var layerList = layers.ToList();
        var layerInputs = new List<Tensor>(layerList.Count);
        LayerContext ctx;
        Tensor top;
        using (no_grad())
        {
            var x = Phase("embed + masks/positions", () => embed_tokens.forward(ValidIds(inputs)));
            // The same context Forward builds, so layer-at-a-time equals Forward.
            ctx = Phase("embed + masks/positions", () => Prepare(inputs, x.dtype).Context);
            for (var i = 0; i < layerList.Count; i++)
            {
                layerInputs.Add(x);
                SeedDropout(LayerSeed(options.DropoutSeed, i), x.device);
                var input = x;
                var layer = layerList[i];
                x = Phase($"forward, {layer.LayerType}", () => layer.forward(input, ctx));
            }
            top = x;
        }

        // Top: final norm + loss, back-propagated into the last layer's output.
        var leaf = top.detach().requires_grad_(true);
        var loss = Phase("loss (norm, lm_head, CE) forward + backward", () => headLossBackward(norm.forward(leaf)));
        var grad = (leaf.grad ?? throw new InvalidOperationException("headLossBackward must back-propagate into the hidden states")).detach();
        // Layers top-down: recompute with grad, backward with the incoming gradient, pass the input's gradient on.
        for (var i = layerList.Count - 1; i >= 0; i--)
        {
            using var layerScope = NewDisposeScope();
            var input = layerInputs[i].detach().requires_grad_(i > 0);
            SeedDropout(LayerSeed(options.DropoutSeed, i), input.device);
            var layer = layerList[i];
            var y = Phase($"recompute, {layer.LayerType}", () => layer.forward(input, ctx));
            if (!y.requires_grad) continue;   // nothing trainable below this point and no input gradient needed
            var incoming = grad;
            Phase($"backward, {layer.LayerType}", () => { y.backward([incoming]); return 0; });
            if (i > 0) grad = input.grad!.detach().MoveToOuterDisposeScope();
        }
        return loss.MoveToOuterDisposeScope();
    }

    static long LayerSeed(long seed, int layer) => unchecked(seed * 1_000_003 + layer + 1);

    /// <summary>Seeds the generators dropout draws from (CPU always; all CUDA devices when training on CUDA).</summary>
    static void SeedDropout(long seed, Device device)
    {
        torch.manual_seed(seed);
        if (device.type == DeviceType.CUDA) torch.cuda.manual_seed_all(seed);
    }
}
