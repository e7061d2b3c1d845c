using Qwen35.Models.Modules;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Qwen35.Models.Tests.Modules;

/// <summary>
/// <see cref="Projection"/> keeps its frozen weight's transpose as a view between calls: every forward must still
/// compute x·Wᵀ with the weight as it is now, whether it was written in place (loading, merging), replaced by another
/// tensor or moved to another dtype, and a trained weight must still get its gradient in every backward.
/// </summary>
public class ProjectionTests
{
    static Tensor Expected(Tensor x, Tensor w) => einsum("ri,oi->ro", x, w);   // y[r,o] = Σ_i x[r,i]·W[o,i]

    static void AssertClose(Tensor actual, Tensor expected)
    {
        Assert.That(actual.shape, Is.EqualTo(expected.shape));
        Assert.That((actual - expected).abs().max().ToDouble(), Is.LessThan(1e-5 * expected.abs().max().ToDouble()));
    }

    static (Projection P, Tensor X) Make()
    {
        using var g = new Generator(11);
        var p = new Projection(6, 5);
        using (no_grad()) p.weight.copy_(randn(5, 6, generator: g));
        return (p, randn(new long[] { 4, 6 }, generator: g));
    }

    [Test]
    public void AWeightWrittenInPlaceIsSeenByTheNextForward()
    {
        using var scope = NewDisposeScope();
        var (p, x) = Make();
        AssertClose(p.forward(x), Expected(x, p.weight));
        var written = randn(5, 6, generator: new Generator(12));
        using (no_grad()) p.weight.copy_(written);
        AssertClose(p.forward(x), Expected(x, written));
        // 3-d inputs go through the same product.
        AssertClose(p.forward(x.unsqueeze(0)).squeeze(0), Expected(x, written));
    }

    [Test]
    public void AReplacedWeightIsUsedByTheNextForward()
    {
        using var scope = NewDisposeScope();
        var (p, x) = Make();
        p.forward(x);
        var replacement = randn(5, 6, generator: new Generator(13));
        p.weight = new Parameter(replacement.clone(), requires_grad: false);
        AssertClose(p.forward(x), Expected(x, replacement));
    }

    [Test]
    public void AModuleMovedToAnotherDtypeComputesInIt()
    {
        using var scope = NewDisposeScope();
        var (p, x) = Make();
        p.forward(x);
        p.to(ScalarType.Float64);
        var y = p.forward(x.to(ScalarType.Float64));
        Assert.That(y.dtype, Is.EqualTo(ScalarType.Float64));
        AssertClose(y, Expected(x.to(ScalarType.Float64), p.weight));
    }

    [Test]
    public void ATrainedWeightGetsItsGradientInEveryBackward()
    {
        using var scope = NewDisposeScope();
        var (p, x) = Make();
        p.weight.requires_grad_(true);
        for (var pass = 0; pass < 2; pass++)
        {
            p.weight.grad = null;
            var upstream = randn(new long[] { 4, 5 }, generator: new Generator((ulong)(20 + pass)));
            (p.forward(x) * upstream).sum().backward();
            AssertClose(p.weight.grad!, einsum("ro,ri->oi", upstream, x));   // dL/dW = gᵀ·x
        }
    }
}
