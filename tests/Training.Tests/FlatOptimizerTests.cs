using Qwen35.Lora;
using Qwen35.Training.Loop;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Qwen35.Training.Tests;

/// <summary>AdamW and clipping on the flat LoRA buffer against the same done per tensor.</summary>
public class FlatOptimizerTests
{
    static readonly long[][] Shapes = [[4, 16], [24, 4], [4, 24], [8, 4], [3, 5]];

    /// <summary>Parameters with the given values and gradients set per step by <paramref name="grads"/>.</summary>
    static List<(string Name, Parameter Param)> Params(long seed) =>
        Shapes.Select((s, i) =>
        {
            using var g = new Generator((ulong)(seed + i));
            return ($"p{i}", new Parameter(randn(s, generator: g)));
        }).ToList();

    static List<Tensor> Grads(long seed, int step) =>
        Shapes.Select((s, i) =>
        {
            using var g = new Generator((ulong)(1000 * step + seed + i));
            return randn(s, generator: g).mul(0.5 + i);
        }).ToList();

    [Test]
    public void FlatAdamWEqualsPerTensorAdamW()
    {
        using var scope = NewDisposeScope();
        var perTensor = Params(1);
        var flatParams = Params(1);
        using var reference = torch.optim.AdamW(perTensor.Select(p => p.Param), lr: 0.01, beta1: 0.8, beta2: 0.95, eps: 1e-6, weight_decay: 0.1);
        using var flat = LoraAdamW.Create(flatParams, lr: 0.01, beta1: 0.8, beta2: 0.95, eps: 1e-6, weightDecay: 0.1);
        var initial = flatParams.Select(p => p.Param.detach().clone()).ToList();
        for (var step = 0; step < 3; step++)
        {
            var grads = Grads(7, step);
            for (var i = 0; i < grads.Count; i++)
            {
                perTensor[i].Param.grad = grads[i].clone();
                using (no_grad()) flatParams[i].Param.grad!.copy_(grads[i]);   // the flat buffer's view: fill, don't replace
            }
            reference.step();
            flat.step();
            if (step == 0)
            {
                // An independent expectation for the first step (m = (1-b1) g, v = (1-b2) g², bias-corrected):
                // p ← p (1 − lr·wd) − lr · m̂ / (√v̂ + eps) = p (1 − lr·wd) − lr · g / (|g| + eps).
                for (var i = 0; i < grads.Count; i++)
                {
                    var g = grads[i].to(ScalarType.Float64);
                    var expected = initial[i].to(ScalarType.Float64).mul(1 - 0.01 * 0.1).sub(g.div(g.abs().add(1e-6)).mul(0.01));
                    Assert.That(flatParams[i].Param.detach().to(ScalarType.Float64).allclose(expected, rtol: 0, atol: 1e-6), Is.True, $"p{i} step 1");
                }
            }
        }
        for (var i = 0; i < perTensor.Count; i++)
        {
            var diff = (flatParams[i].Param - perTensor[i].Param).abs().max().item<float>();
            // The same element-wise kernels on the same values: equal up to vectorised-vs-scalar rounding (measured 0).
            Assert.That(diff, Is.LessThanOrEqualTo(1e-7f), $"p{i}");
        }
        var flatState = (AdamW.State)flat.state_dict().State[0];
        var refState = (AdamW.State)reference.state_dict().State[0];
        Assert.That(flatState.step, Is.EqualTo(refState.step));
        Assert.That(LoraAdamW.Flat(flat), Is.Not.Null);
        Assert.That(LoraAdamW.Flat(reference), Is.Null);
    }

    [Test]
    public void ClippingTheFlatBufferEqualsPerTensorClipGradNorm()
    {
        using var scope = NewDisposeScope();
        var perTensor = Params(3);
        var flatParams = Params(3);
        using var flat = LoraAdamW.Create(flatParams, lr: 0.01);
        var grads = Grads(11, 0);
        for (var i = 0; i < grads.Count; i++)
        {
            perTensor[i].Param.grad = grads[i].clone();
            using (no_grad()) flatParams[i].Param.grad!.copy_(grads[i]);
        }
        // libtorch's clip_grad_norm_ per tensor (the reference) and ours on the single flat gradient.
        var expectedNorm = torch.nn.utils.clip_grad_norm_(perTensor.Select(p => p.Param), 1.0);
        var norm = GradientClipping.ClipOnDevice(LoraAdamW.Parameters(flat), 1.0)!;
        Assert.That(expectedNorm, Is.GreaterThan(1.0), "the case clips");
        // A norm of the whole buffer sums in another order than a norm of per-tensor norms: equal to fp32 rounding.
        Assert.That(norm.item<float>(), Is.EqualTo(expectedNorm).Within(1e-6 * expectedNorm));
        for (var i = 0; i < grads.Count; i++)
            Assert.That(flatParams[i].Param.grad!.allclose(perTensor[i].Param.grad!, rtol: 1e-6, atol: 1e-7), Is.True, $"p{i}");
    }

    [Test]
    public void FlatStepIsAHandfulOfOps()
    {
        using var scope = NewDisposeScope();
        var flatParams = Params(5);
        var perTensor = Params(5);
        using var flat = LoraAdamW.Create(flatParams, lr: 0.01);
        using var reference = torch.optim.AdamW(perTensor.Select(p => p.Param), lr: 0.01);
        foreach (var (_, p) in perTensor) p.grad = ones_like(p);
        using (no_grad()) flat.parameters().Single().grad!.fill_(1);
        using var counter = Bench.OpCounter.Start();
        var (flatOps, _) = Bench.OpCounter.Count(() => flat.step());
        var (perTensorOps, _) = Bench.OpCounter.Count(() => reference.step());
        // Per tensor the step costs the same ops again for each of the 5 tensors; flat, once.
        Assert.That(perTensorOps, Is.EqualTo(flatOps * Shapes.Length));
    }
}
