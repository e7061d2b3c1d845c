using Qwen35.Models.Modules;
using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Lora.Tests;

/// <summary>
/// <see cref="Projection.ForwardShared"/>: the LoRA input-side products of projections that read the same input, as
/// one product with the concatenated A matrices, give each projection's own output and the same gradients for x, A
/// and B as the projections run one by one (fp32 rounding of a wider product); adapters that cannot share (dropout,
/// switched off) and plain projections run as before, bitwise.
/// </summary>
public class SharedInputProductTests
{
    static (Projection[] Projections, LoraAdapter?[] Adapters) Make(double dropout = 0)
    {
        using var g = new Generator(3);
        var outs = new[] { 48, 32, 8, 20 };
        var ranks = new[] { 8, 4, 0, 16 };    // the third projection has no adapter
        var projections = new Projection[outs.Length];
        var adapters = new LoraAdapter?[outs.Length];
        for (var i = 0; i < outs.Length; i++)
        {
            projections[i] = new Projection(40, outs[i]);
            using (no_grad()) projections[i].weight.copy_(randn(outs[i], 40, generator: g).mul(0.1));
            if (ranks[i] == 0) continue;
            adapters[i] = LoraInjector.Attach(new DecoderProjection($"model.language_model.layers.0.linear_attn.p{i}", projections[i], 0, "linear_attention"),
                randn(ranks[i], 40, generator: g).mul(0.2), randn(outs[i], ranks[i], generator: g).mul(0.2), 2.0 * ranks[i], 2, dropout);
        }
        return (projections, adapters);
    }

    static (Tensor[] Outputs, Tensor GradX, Tensor[] Grads) Run(Projection[] projections, LoraAdapter?[] adapters, Tensor x, bool shared)
    {
        var leaf = x.detach().clone().requires_grad_(true);
        var outputs = shared ? Projection.ForwardShared(leaf, projections) : projections.Select(p => p.forward(leaf)).ToArray();
        using var g = new Generator(9);
        var loss = outputs.Select(o => (o * randn(o.shape, generator: g)).sum()).Aggregate((a, b) => a + b);
        foreach (var a in adapters.OfType<LoraAdapter>()) { a.LoraA.weight.grad = null; a.LoraB.weight.grad = null; }
        loss.backward();
        var grads = adapters.OfType<LoraAdapter>().SelectMany(a => new[] { a.LoraA.weight.grad!.clone(), a.LoraB.weight.grad!.clone() }).ToArray();
        return (outputs.Select(o => o.detach()).ToArray(), leaf.grad!.clone(), grads);
    }

    static double MaxDiff(Tensor a, Tensor b) => (a - b).abs().max().ToDouble();

    /// <summary>Largest difference relative to the largest magnitude: the wider product may sum in another order, so
    /// the two agree to fp32 rounding (a few 1e-7 relative), not bitwise.</summary>
    static double Relative(Tensor a, Tensor b) => MaxDiff(a, b) / b.abs().max().ToDouble();

    [Test]
    public void SharedProductEqualsOneByOne()
    {
        using var scope = NewDisposeScope();
        var (projections, adapters) = Make();
        var x = randn(new long[] { 30, 40 }, generator: new Generator(5));
        var alone = Run(projections, adapters, x, shared: false);
        var together = Run(projections, adapters, x, shared: true);
        for (var i = 0; i < alone.Grads.Length; i++)
            TestContext.Out.WriteLine($"A/B gradient {i}: max |g| {alone.Grads[i].abs().max().ToDouble():G3}, relative difference {Relative(together.Grads[i], alone.Grads[i]):G3}");
        for (var i = 0; i < projections.Length; i++)
        {
            Assert.That(together.Outputs[i].shape, Is.EqualTo(alone.Outputs[i].shape));
            Assert.That(Relative(together.Outputs[i], alone.Outputs[i]), Is.LessThanOrEqualTo(1e-6), $"output {i}");
        }
        // The projection without an adapter is computed exactly as alone.
        Assert.That(together.Outputs[2].equal(alone.Outputs[2]).all().ToBoolean(), Is.True);
        Assert.That(Relative(together.GradX, alone.GradX), Is.LessThanOrEqualTo(1e-6), "x gradient");
        Assert.That(alone.Grads.Min(g => g.abs().max().ToDouble()), Is.GreaterThan(1e-2), "non-trivial A/B gradients");
        for (var i = 0; i < alone.Grads.Length; i++)
            Assert.That(Relative(together.Grads[i], alone.Grads[i]), Is.LessThanOrEqualTo(1e-6), $"A/B gradient {i}");
    }

    [Test]
    public void AdaptersThatCannotShareRunAlone()
    {
        using var scope = NewDisposeScope();
        var x = randn(new long[] { 30, 40 }, generator: new Generator(5));
        // Switched off (a DPO reference pass): the base outputs, bitwise.
        var (projections, adapters) = Make();
        foreach (var a in adapters.OfType<LoraAdapter>()) a.Enabled = false;
        var shared = Projection.ForwardShared(x, projections);
        for (var i = 0; i < projections.Length; i++)
            Assert.That(shared[i].equal(nn.functional.linear(x, projections[i].weight)).all().ToBoolean(), Is.True, $"base output {i}");
        // Dropout: every adapter draws its own mask, so nothing is shared and the same seed gives the same outputs.
        (projections, adapters) = Make(dropout: 0.5);
        foreach (var a in adapters.OfType<LoraAdapter>()) { a.LoraA.train(); a.LoraB.train(); }
        Assert.That(adapters.OfType<LoraAdapter>().All(a => a.SharedDownWeight is null), Is.True);
        manual_seed(1);
        var dropped = Projection.ForwardShared(x, projections);
        manual_seed(1);
        var oneByOne = projections.Select(p => p.forward(x)).ToArray();
        for (var i = 0; i < projections.Length; i++)
            Assert.That(dropped[i].equal(oneByOne[i]).all().ToBoolean(), Is.True, $"dropout output {i}");
    }
}
