using Qwen35.Training.Bench;
using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Training.Tests;

[NonParallelizable]
public class OpCounterTests
{
    [Test]
    public void CountsAHandWrittenSequence()
    {
        using var scope = NewDisposeScope();
        var a = ones(4);
        using var counter = OpCounter.Start();
        var (top, all) = OpCounter.Count(() =>
        {
            a.add_(1);                  // 1: add_
            var b = a.mul(a);           // 2: mul
            var s = b.sum();            // 3: sum
            var v = a.view(2, 2);       // 4: view (a dispatcher call, no kernel)
            Console.WriteLine($"{s.ToSingle()} {v.shape[0]}");   // 5: item (_local_scalar_dense nested)
        });
        TestContext.Out.WriteLine($"top {top} all {all}");
        Assert.That(top, Is.EqualTo(5));
        Assert.That(all, Is.GreaterThanOrEqualTo(top));
        // The same five, by name (libtorch's operator names).
        Assert.That(OpCounter.TopLevelByName().OrderBy(x => x.Name, StringComparer.Ordinal),
            Is.EqualTo(new[] { ("aten::add_", 1L), ("aten::item", 1L), ("aten::mul", 1L), ("aten::sum", 1L), ("aten::view", 1L) }));
    }

    [Test]
    public void CountsAutogradBackwardAndPhases()
    {
        using var scope = NewDisposeScope();
        var x = ones(3).requires_grad_(true);
        using var counter = OpCounter.Start();
        var timer = new Loop.PhaseTimer(CPU);
        Tensor y = null!;
        timer.Time("forward", () => y = x.mul(x).sum());                 // mul, sum
        timer.Time("backward", () => y.backward());
        timer.Time("nothing", () => { });
        var t = timer.Totals.ToDictionary(p => p.Phase);
        Assert.That(t["forward"].TopLevelOps, Is.EqualTo(2));
        // The engine's ops count too (SumBackward0 expands, MulBackward0 multiplies twice, the two gradients of x
        // are added): a handle count would see none of them.
        Assert.That(t["backward"].TopLevelOps, Is.GreaterThanOrEqualTo(4));
        Assert.That(t["nothing"].TopLevelOps, Is.EqualTo(0));
        Assert.That(x.grad!.data<float>().ToArray(), Is.EqualTo(new[] { 2f, 2f, 2f }));
    }

    [Test]
    public void CountsNothingOnceStopped()
    {
        using var scope = NewDisposeScope();
        var a = ones(2);
        using (OpCounter.Start()) { }
        var before = OpCounter.All;
        a.add_(1);
        Assert.That(OpCounter.All, Is.EqualTo(before));
    }
}
