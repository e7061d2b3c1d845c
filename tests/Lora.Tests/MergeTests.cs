using static TorchSharp.torch;

namespace Qwen35.Lora.Tests;

public class MergeTests
{
    static void RandomiseB(nn.Module model, long seed)
    {
        using var g = new TorchSharp.torch.Generator((ulong)seed);
        using var noGrad = no_grad();
        foreach (var a in LoraInjector.Adapters(model)) a.LoraB.weight.copy_(randn(a.LoraB.weight.shape, generator: g).mul(0.05));
    }

    [Test]
    public void MergedModel_EqualsUnmerged_AndUnmergeRestoresWeights()
    {
        using var scope = NewDisposeScope();
        using var model = FakeDecoder.Tiny();
        model.eval();
        var before = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());
        LoraInjector.Apply(model, new LoraOptions { Rank = 4, Alpha = 8, TargetModules = LoraTargets.AllLinear }, seed: 3);
        RandomiseB(model, 4);
        var x = randn(2, 5, 64);
        var unmerged = model.forward(x);
        var baseOut = LoraInjector.Adapters(model).Count; // all 31 projections adapted

        Assert.That(LoraMerge.Merge(model), Is.EqualTo(baseOut));
        var merged = model.forward(x);
        Assert.That(merged.allclose(unmerged, rtol: 1e-4, atol: 1e-5), Is.True, $"max diff {(merged - unmerged).abs().max().item<float>()}");

        Assert.That(LoraMerge.Unmerge(model), Is.EqualTo(baseOut));
        foreach (var (name, p) in model.named_parameters())
        {
            if (!before.TryGetValue(name, out var orig)) continue; // adapter parameters
            Assert.That(p.allclose(orig, rtol: 0, atol: 1e-6), Is.True, $"{name} not restored");
        }
        Assert.That(model.forward(x).allclose(unmerged, rtol: 1e-4, atol: 1e-5), Is.True);
    }

    [Test]
    public void Bf16Merge_RoundsOnceFromFp32()
    {
        using var scope = NewDisposeScope();
        using var model = FakeDecoder.Tiny(ScalarType.BFloat16);
        LoraInjector.Apply(model, new LoraOptions { Rank = 4, Alpha = 8, TargetModules = LoraTargets.Names("up_proj") }, seed: 3);
        RandomiseB(model, 5);
        var adapter = LoraInjector.Adapters(model)[0];
        var w0 = adapter.Target.weight.detach().clone();
        var expected = (w0.to(ScalarType.Float32) + adapter.DeltaWeight()).to(ScalarType.BFloat16);

        LoraMerge.Merge(adapter);

        Assert.That(adapter.Target.weight.dtype, Is.EqualTo(ScalarType.BFloat16));
        Assert.That(adapter.Target.weight.equal(expected).all().item<bool>(), Is.True);
    }
}
