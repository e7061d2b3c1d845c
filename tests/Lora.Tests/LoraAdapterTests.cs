using Qwen35.Models.Modules;
using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Lora.Tests;

public class LoraAdapterTests
{
    static Projection RandomProjection(int inF, int outF, ScalarType dtype = ScalarType.Float32, long seed = 3)
    {
        var p = new Projection(inF, outF, dtype);
        using var g = new Generator((ulong)seed);
        using var noGrad = no_grad();
        p.weight.copy_(randn(outF, inF, generator: g).mul(0.1));
        return p;
    }

    static DecoderProjection Named(Projection p) => new("model.language_model.layers.0.mlp.up_proj", p, 0, "linear_attention");

    [Test]
    public void Forward_IsBasePlusScaledBA()
    {
        using var scope = NewDisposeScope();
        var proj = RandomProjection(16, 24);
        using var g = new Generator(5);
        var a = randn(4, 16, generator: g);
        var b = randn(24, 4, generator: g);
        var x = randn(2, 3, 16, generator: g);
        var expected = x.matmul(proj.weight.t()) + 2.5 * x.matmul(a.t()).matmul(b.t());
        LoraInjector.Attach(Named(proj), a, b, alpha: 10, scaling: 2.5, dropout: 0);

        var y = proj.forward(x);

        Assert.That(y.allclose(expected, rtol: 1e-5, atol: 1e-5), Is.True, $"max diff {(y - expected).abs().max().item<float>()}");
    }

    [Test]
    public void ZeroB_LeavesTheOutputUnchanged()
    {
        using var scope = NewDisposeScope();
        var proj = RandomProjection(16, 24);
        var x = randn(3, 16);
        var before = proj.forward(x);
        LoraInjector.Attach(Named(proj), randn(8, 16), zeros(24, 8), 16, 2, 0);

        Assert.That(proj.forward(x).equal(before).all().item<bool>(), Is.True);
    }

    [Test]
    public void Bf16Base_KeepsFp32AdapterAndBf16Output_GradientsOnlyOnAdapter()
    {
        using var scope = NewDisposeScope();
        var proj = RandomProjection(32, 48, ScalarType.BFloat16);
        using var g = new Generator(9);
        var a = randn(4, 32, generator: g);
        var b = randn(48, 4, generator: g).mul(0.1);
        var adapter = LoraInjector.Attach(Named(proj), a, b, 8, 2, 0);
        var x = randn(5, 32, generator: g).to(ScalarType.BFloat16);

        var y = proj.forward(x);
        y.to(ScalarType.Float32).sum().backward();

        Assert.That(y.dtype, Is.EqualTo(ScalarType.BFloat16));
        Assert.That(adapter.LoraA.weight.dtype, Is.EqualTo(ScalarType.Float32));
        Assert.That(adapter.LoraA.weight.grad, Is.Not.Null);
        Assert.That(adapter.LoraB.weight.grad, Is.Not.Null);
        Assert.That(proj.weight.grad, Is.Null, "the frozen base weight must not get a gradient");
        // The delta is computed in fp32 from the bf16 input, then rounded once.
        var xf = x.to(ScalarType.Float32);
        var expected = xf.matmul(proj.weight.to(ScalarType.Float32).t()) + 2 * xf.matmul(a.t()).matmul(b.t());
        var err = (y.to(ScalarType.Float32) - expected).abs().max().item<float>();
        Assert.That(err, Is.LessThan(0.05), "bf16 output far from the fp32 reference");
    }

    [Test]
    public void Dropout_OnlyInTrainingMode()
    {
        using var scope = NewDisposeScope();
        var proj = RandomProjection(64, 64);
        LoraInjector.Attach(Named(proj), randn(8, 64), randn(64, 8), 8, 1, dropout: 0.5);
        var x = randn(4, 64);

        proj.eval();
        var e1 = proj.forward(x);
        var e2 = proj.forward(x);
        proj.train();
        var t1 = proj.forward(x);

        Assert.That(e1.equal(e2).all().item<bool>(), Is.True, "eval mode must be deterministic");
        Assert.That(t1.allclose(e1, rtol: 1e-3, atol: 1e-3), Is.False, "training mode must apply dropout");
    }

    [Test]
    public void Merge_GivesTheSameOutput_AndUnmergeRestoresTheWeight()
    {
        using var scope = NewDisposeScope();
        var proj = RandomProjection(32, 40);
        var original = proj.weight.clone();
        var adapter = LoraInjector.Attach(Named(proj), randn(4, 32), randn(40, 4), 8, 2, 0);
        var x = randn(6, 32);
        var unmerged = proj.forward(x);

        LoraMerge.Merge(adapter);
        var merged = proj.forward(x);
        Assert.That(adapter.Merged, Is.True);
        Assert.That(merged.allclose(unmerged, rtol: 1e-5, atol: 1e-4), Is.True, $"max diff {(merged - unmerged).abs().max().item<float>()}");
        Assert.That(proj.weight.allclose(original, atol: 1e-3), Is.False, "merging must change W");

        LoraMerge.Unmerge(adapter);
        Assert.That(proj.weight.allclose(original, rtol: 0, atol: 1e-6), Is.True, $"max diff {(proj.weight - original).abs().max().item<float>()}");
        Assert.That(proj.forward(x).allclose(unmerged, rtol: 1e-5, atol: 1e-5), Is.True);
    }

    [Test]
    public void Merge_Twice_Throws()
    {
        using var scope = NewDisposeScope();
        var proj = RandomProjection(8, 8);
        var adapter = LoraInjector.Attach(Named(proj), randn(2, 8), randn(8, 2), 2, 1, 0);
        LoraMerge.Merge(adapter);
        Assert.Throws<InvalidOperationException>(() => LoraMerge.Merge(adapter));
    }

    [Test]
    public void Attach_WrongShapes_NamesTheModule()
    {
        using var scope = NewDisposeScope();
        var proj = RandomProjection(8, 12);
        var e = Assert.Throws<ArgumentException>(() => LoraInjector.Attach(Named(proj), randn(2, 9), randn(12, 2), 2, 1, 0));
        Assert.That(e!.Message, Does.Contain("mlp.up_proj").And.Contain("[2, 9]"));
    }
}
