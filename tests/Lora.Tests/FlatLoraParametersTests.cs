using Qwen35.Models.Modules;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Qwen35.Lora.Tests;

public class FlatLoraParametersTests
{
    /// <summary>Two projections with adapters whose A and B are random (B non-zero, so both get gradients).</summary>
    static (Projection[] Projections, List<(string Name, Parameter Param)> Trainable) Adapted(long seed)
    {
        using var g = new Generator((ulong)seed);
        var shapes = new[] { (16, 24), (24, 8) };
        var projections = new Projection[shapes.Length];
        var trainable = new List<(string, Parameter)>();
        for (var i = 0; i < shapes.Length; i++)
        {
            var (inF, outF) = shapes[i];
            var p = new Projection(inF, outF, ScalarType.Float32);
            using (no_grad()) p.weight.copy_(randn(outF, inF, generator: g).mul(0.1));
            p.weight.requires_grad = false;
            var name = $"model.language_model.layers.{i}.mlp.up_proj";
            var adapter = LoraInjector.Attach(new DecoderProjection(name, p, i, "linear_attention"),
                randn(4, inF, generator: g), randn(outF, 4, generator: g), alpha: 8, scaling: 2, dropout: 0);
            trainable.Add((name + ".lora_A.weight", adapter.LoraA.weight));
            trainable.Add((name + ".lora_B.weight", adapter.LoraB.weight));
            projections[i] = p;
        }
        return (projections, trainable);
    }

    static Tensor Loss(Projection[] projections, Tensor x) => projections[1].forward(projections[0].forward(x).tanh()).pow(2).sum();

    [Test]
    public void ViewsAliasTheBuffer()
    {
        using var scope = NewDisposeScope();
        var (_, trainable) = Adapted(1);
        var before = trainable.Select(t => t.Param.detach().clone()).ToList();
        var flat = FlatLoraParameters.Create(trainable);

        // The values moved into the buffer in order, unchanged.
        Assert.That(flat.Values.shape, Is.EqualTo(new long[] { before.Sum(b => b.numel()) }));
        Assert.That(flat.Values.detach().equal(cat(before.Select(b => b.reshape(-1)).ToList(), 0)).all().item<bool>(), Is.True);
        using (no_grad())
        {
            // Buffer → parameter.
            flat.Values[flat.Slices[2].Offset + 5] = tensor(42f);
            Assert.That(trainable[2].Param.reshape(-1)[5].item<float>(), Is.EqualTo(42f));
            // Parameter → buffer.
            trainable[3].Param.fill_(-7f);
            Assert.That(flat.Values.narrow(0, flat.Slices[3].Offset, flat.Slices[3].Count).eq(-7f).all().item<bool>(), Is.True);
            Assert.That(flat.Values.narrow(0, flat.Slices[2].Offset, flat.Slices[2].Count).eq(-7f).any().item<bool>(), Is.False);
            // Gradients: the buffer is each parameter's .grad.
            flat.Grads.narrow(0, flat.Slices[1].Offset, 1).fill_(3f);
            Assert.That(trainable[1].Param.grad!.reshape(-1)[0].item<float>(), Is.EqualTo(3f));
        }
        Assert.That(FlatLoraParameters.Of(flat.Values), Is.SameAs(flat));
        Assert.That(trainable.All(t => t.Param.requires_grad && t.Param.is_leaf), Is.True);
    }

    [Test]
    public void BackwardAccumulatesIntoTheFlatGradientsExactlyAsPerTensor()
    {
        using var scope = NewDisposeScope();
        var (plain, plainTrainable) = Adapted(2);
        var (flatModel, flatTrainable) = Adapted(2);
        var flat = FlatLoraParameters.Create(flatTrainable);
        using var g = new Generator(9);
        var x1 = randn(3, 16, generator: g);
        var x2 = randn(5, 16, generator: g);
        // Two backwards: the second accumulates onto the first, as gradient accumulation does.
        foreach (var x in new[] { x1, x2 })
        {
            Loss(plain, x).backward();
            Loss(flatModel, x).backward();
        }
        for (var i = 0; i < plainTrainable.Count; i++)
        {
            var expected = plainTrainable[i].Param.grad!;
            Assert.That(flatTrainable[i].Param.grad!.equal(expected).all().item<bool>(), Is.True, $"{flatTrainable[i].Name}: bitwise the per-tensor gradient");
            Assert.That(FlatLoraParameters.SliceOf(flat.Grads, flat.Slices[i]).equal(expected).all().item<bool>(), Is.True,
                $"{flatTrainable[i].Name}: accumulated in place into the flat buffer");
        }
        // Zeroing the buffer zeroes every parameter's gradient.
        flat.Grads.zero_();
        Assert.That(flatTrainable.All(t => t.Param.grad!.eq(0).all().item<bool>()), Is.True);
    }

    [Test]
    public void RefusesMixedDtypes()
    {
        using var scope = NewDisposeScope();
        var a = new Parameter(zeros(2, 2));
        var b = new Parameter(zeros(2, 2, dtype: ScalarType.Float64));
        Assert.Throws<ArgumentException>(() => FlatLoraParameters.Create([("a", a), ("b", b)]));
    }
}
