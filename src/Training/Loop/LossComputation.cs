using Qwen35.Models;
using Qwen35.Models.Config;
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
        using var scope = NewDisposeScope();
        if (!checkpointing)
        {
            Seed(dropoutSeed, b.InputIds.device);
            var hidden = model.Forward(new ModelInputs(b.InputIds, b.AttentionMask, null, b.SequenceIds));
            using var sel = ChunkedCrossEntropy.Select(hidden, b.Labels, b.SequenceIds, b.TokenWeights);
            return ChunkedCrossEntropy.SumLossBackward(hidden, sel, model.LmHeadWeight, gradScale, chunkRows);
        }

        var text = model.TextModel;
        var layers = text.layers.ToList();
        var layerInputs = new List<Tensor>(layers.Count);
        LayerContext ctx;
        Tensor top;
        using (no_grad())
        {
            var x = text.embed_tokens.forward(b.InputIds);
            ctx = TrainingLayerContext.Build(model.Config, b.InputIds, b.AttentionMask, b.SequenceIds, x.dtype);
            for (var i = 0; i < layers.Count; i++)
            {
                layerInputs.Add(x);
                // The same seed in the recompute below gives the same dropout masks in both passes.
                Seed(LayerSeed(dropoutSeed, i), x.device);
                x = layers[i].forward(x, ctx);
            }
            top = x;
        }

        // Top: final norm + loss, back-propagated into the last layer's output.
        double sum;
        Tensor grad;
        {
            var leaf = top.detach().requires_grad_(true);
            var hidden = text.norm.forward(leaf);
            using var sel = ChunkedCrossEntropy.Select(hidden, b.Labels, b.SequenceIds, b.TokenWeights);
            sum = ChunkedCrossEntropy.SumLossBackward(hidden, sel, model.LmHeadWeight, gradScale, chunkRows);
            grad = leaf.grad!.detach();
        }
        // Layers top-down: recompute with grad, backward with the incoming gradient, pass the input's gradient on.
        for (var i = layers.Count - 1; i >= 0; i--)
        {
            using var layerScope = NewDisposeScope();
            var input = layerInputs[i].detach().requires_grad_(i > 0);
            Seed(LayerSeed(dropoutSeed, i), input.device);
            var y = layers[i].forward(input, ctx);
            if (!y.requires_grad) continue;   // nothing trainable below this point and no input gradient needed
            y.backward([grad]);
            if (i > 0) grad = input.grad!.detach().MoveToOuterDisposeScope();
        }
        return sum;
    }

    static long LayerSeed(long seed, int layer) => unchecked(seed * 1_000_003 + layer + 1);

    /// <summary>Seeds the generators dropout draws from (CPU always; all CUDA devices when training on CUDA).</summary>
    public static void Seed(long seed, Device device)
    {
        torch.manual_seed(seed);
        if (device.type == DeviceType.CUDA) torch.cuda.manual_seed_all(seed);
    }
}

/// <summary>
/// The per-forward <see cref="LayerContext"/> for training inputs (no cache): positions, RoPE tables, attention and
/// padding masks, document starts. Qwen35TextModel builds the same context privately inside Forward; checkpointing
/// needs it to call layers one at a time, so the training case is rebuilt here and a test checks that the layer-wise
/// path reproduces Forward's hidden states exactly.
/// </summary>
public static class TrainingLayerContext
{
    public static LayerContext Build(Qwen35TextConfig c, Tensor ids, Tensor? attentionMask, Tensor? sequenceIds, ScalarType dtype)
    {
        long b = ids.shape[0], t = ids.shape[1];
        var mask = attentionMask?.to(ScalarType.Int64);
        Tensor? docStarts = null, posInDoc = null;
        if (sequenceIds is { } seq)
        {
            docStarts = DocumentStarts.FromSequenceIds(seq);
            var index = arange(t, dtype: ScalarType.Int64, device: seq.device).expand(b, t);
            var startIndex = where(docStarts, index, zeros_like(index)).cummax(1).values;
            posInDoc = index - startIndex;
        }
        var positions = posInDoc
                        ?? (mask is not null
                            ? (mask.cumsum(1) - 1).clamp_min(0)
                            : arange(t, dtype: ScalarType.Int64, device: ids.device).expand(b, t));
        var (cos, sin) = Rotary.Tables(positions, c.RotaryDim, c.RopeTheta, dtype);

        Tensor? attn = null;
        var isCausal = false;
        if (mask is null && sequenceIds is null) isCausal = t > 1;
        else
        {
            var q = arange(t, dtype: ScalarType.Int64, device: ids.device).view(t, 1);
            var k = arange(t, dtype: ScalarType.Int64, device: ids.device).view(1, t);
            var allowed = (k <= q).view(1, 1, t, t).expand(b, 1, t, t);
            if (mask is not null) allowed = allowed.logical_and(mask.to(ScalarType.Bool).view(b, 1, 1, t));
            if (sequenceIds is not null) allowed = allowed.logical_and(sequenceIds.view(b, 1, t, 1) == sequenceIds.view(b, 1, 1, t));
            attn = allowed.logical_or((k == q).view(1, 1, t, t));
        }
        var linearMask = mask is not null && t > 1 ? mask.to(dtype) : null;
        return new LayerContext(cos, sin, attn, isCausal, linearMask, docStarts, null);
    }
}
