using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Qwen35.Training.Loop;

/// <summary>
/// <c>clip_grad_norm_</c> without the host read. TorchSharp's <c>nn.utils.clip_grad_norm_</c> returns the norm as a
/// double, i.e. it waits for the device; this version does the same arithmetic as libtorch's
/// (total = ‖(‖g₁‖, ‖g₂‖, …)‖₂, coef = min(1, max_norm / (total + 1e-6)), every g ← g·coef) entirely on the device
/// and returns the total norm as a tensor, so the training step can read loss and norm back in ONE transfer.
/// </summary>
public static class GradientClipping
{
    /// <summary>Scales the gradients in place so their global L2 norm is at most <paramref name="maxNorm"/> and
    /// returns the norm before clipping (fp32 scalar on the gradients' device, in the caller's dispose scope), or
    /// null when no parameter has a gradient. A non-finite norm makes non-finite gradients, as in PyTorch; the caller
    /// skips the update then.</summary>
    public static Tensor? ClipOnDevice(IReadOnlyList<Parameter> parameters, double maxNorm)
    {
        var grads = parameters.Select(p => p.grad).OfType<Tensor>().ToList();
        if (grads.Count == 0) return null;
        Tensor total;
        using (var scope = NewDisposeScope())
        {
            // One gradient (flat LoRA storage): its norm directly, without the norm-of-norms stack.
            using var norms = grads.Count == 1 ? null : stack(grads.Select(g => linalg.vector_norm(g, 2)).ToArray());
            total = linalg.vector_norm(norms ?? grads[0], 2).MoveToOuterDisposeScope();
            var coef = (maxNorm / (total + 1e-6)).clamp_max(1.0);
            foreach (var g in grads) g.mul_(coef);
        }
        return total;
    }
}
