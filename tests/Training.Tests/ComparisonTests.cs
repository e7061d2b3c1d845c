using Qwen35.Training.Verification;
using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Training.Tests;

/// <summary>
/// The measures `trainer verify` and the golden tests judge by (<see cref="Comparison"/>), on small vectors whose
/// results are worked out by hand in the comments, plus torch.allclose itself as the independent judge of
/// <see cref="Comparison.AllcloseExcess"/>.
/// </summary>
public class ComparisonTests
{
    static Tensor T(params double[] v) => tensor(v, dtype: ScalarType.Float64);

    [Test]
    public void MaxAbsDiffIsTheLargestElementGap()
    {
        using var scope = NewDisposeScope();
        // |1-1|, |2-2.5|, |3-1| = 0, 0.5, 2
        Assert.That(Comparison.MaxAbsDiff(T(1, 2, 3), T(1, 2.5, 1)), Is.EqualTo(2.0));
        Assert.That(Comparison.MaxAbsDiff(T(1, 2, 3), T(1, 2, 3)), Is.Zero);
        // 2-D: the largest gap anywhere, sign ignored: |-4 - 0.25| = 4.25
        Assert.That(Comparison.MaxAbsDiff(T(1, -4, 0, 2).view(2, 2), T(1, 0.25, 0, 2).view(2, 2)), Is.EqualTo(4.25));
    }

    [Test]
    public void MeasuresAddNoRoundingOfTheirOwn()
    {
        using var scope = NewDisposeScope();
        // 1/3 in bf16 is 0.333984375 (8 significant bits: 171/512); against the float64 1/3 the gap is exactly
        // 0.333984375 - 1/3 = 1/1536. Computing the gap in bf16 or fp32 would round it.
        var third = T(1.0 / 3);
        Assert.That(Comparison.MaxAbsDiff(third.to(ScalarType.BFloat16), third), Is.EqualTo(1.0 / 1536).Within(1e-15));
    }

    [Test]
    public void RelL2IsTheErrorNormOverTheReferenceNorm()
    {
        using var scope = NewDisposeScope();
        // ‖(3,5) − (3,4)‖ / ‖(3,4)‖ = 1 / 5
        Assert.That(Comparison.RelL2(T(3, 5), T(3, 4)), Is.EqualTo(0.2).Within(1e-15));
        // Relative to the second argument: ‖(3,4) − (3,5)‖ / ‖(3,5)‖ = 1 / √34
        Assert.That(Comparison.RelL2(T(3, 4), T(3, 5)), Is.EqualTo(1 / Math.Sqrt(34)).Within(1e-15));
        // Twice the reference: ‖r‖ / ‖r‖ = 1
        Assert.That(Comparison.RelL2(T(6, 8), T(3, 4)), Is.EqualTo(1.0).Within(1e-15));
    }

    [Test]
    public void ArgmaxDisagreementIsTheShareOfRowsPredictingAnotherClass()
    {
        using var scope = NewDisposeScope();
        // Row argmaxes: actual 0, 1, 2, 2; reference 0, 1, 2, 0: one row of four differs.
        var actual = T(5, 1, 0, /**/ 0, 3, 1, /**/ 0, 0, 9, /**/ 1, 2, 3).view(4, 3);
        var reference = T(4, 0, 0, /**/ 1, 2, 0, /**/ 1, 1, 2, /**/ 3, 2, 1).view(4, 3);
        Assert.That(Comparison.ArgmaxDisagreement(actual, reference), Is.EqualTo(0.25).Within(1e-15));
        // Over every index but the last: [2, 2, 3] is four rows as well.
        Assert.That(Comparison.ArgmaxDisagreement(actual.view(2, 2, 3), reference.view(2, 2, 3)), Is.EqualTo(0.25).Within(1e-15));
        Assert.That(Comparison.ArgmaxDisagreement(actual, actual * 7), Is.Zero, "scaling keeps every argmax");
    }

    [Test]
    public void CosineGapJudgesDirectionNotScale()
    {
        using var scope = NewDisposeScope();
        // cos((1,0), (1,1)) = 1/√2
        Assert.That(Comparison.CosineGap(T(1, 0), T(1, 1)), Is.EqualTo(1 - 1 / Math.Sqrt(2)).Within(1e-15));
        Assert.That(Comparison.CosineGap(T(1, 2, 3), T(-1, -2, -3)), Is.EqualTo(2.0).Within(1e-15), "opposite");
        Assert.That(Comparison.CosineGap(T(1, 0, 0), T(0, 5, 0)), Is.EqualTo(1.0).Within(1e-15), "orthogonal");
        Assert.That(Comparison.CosineGap(T(2, 4, 6), T(1, 2, 3)), Is.EqualTo(0.0).Within(1e-15), "same direction, twice as long");
        // Flattened: a [2, 2] tensor is the vector (1, 0, 0, 1); against (1, 1, 1, 1): 2 / (√2 · 2) = 1/√2.
        Assert.That(Comparison.CosineGap(T(1, 0, 0, 1).view(2, 2), T(1, 1, 1, 1).view(2, 2)), Is.EqualTo(1 - 1 / Math.Sqrt(2)).Within(1e-15));
    }

    [Test]
    public void AllcloseExcessIsTheGapOverTorchAllclosesBudget()
    {
        using var scope = NewDisposeScope();
        var tolerance = new Tolerance(Atol: 1e-5, Rtol: 1e-3);
        var reference = T(1, 100, 0);
        // Budgets atol + rtol·|ref|: 1.01e-3, 0.10001, 1e-5. Gaps 1.5e-3, 0.05, 5e-6:
        // 1.5e-3 / 1.01e-3 = 1.4851..., 0.05 / 0.10001 = 0.49995..., 5e-6 / 1e-5 = 0.5; the first breaks allclose.
        var failing = T(1.0015, 100.05, 5e-6);
        Assert.That(Comparison.AllcloseExcess(failing, reference, tolerance), Is.EqualTo(1.5e-3 / 1.01e-3).Within(1e-9));
        Assert.That(failing.allclose(reference, rtol: 1e-3, atol: 1e-5), Is.False);
        // Gap 5e-4 at the first element instead: 5e-4 / 1.01e-3 = 0.495..., so the largest is the third's 0.5.
        var passing = T(1.0005, 100.05, 5e-6);
        Assert.That(Comparison.AllcloseExcess(passing, reference, tolerance), Is.EqualTo(0.5).Within(1e-9));
        Assert.That(passing.allclose(reference, rtol: 1e-3, atol: 1e-5), Is.True);
        Assert.That(tolerance.Measure, Is.EqualTo("max |Δ|/(1e-5+1e-3|ref|)"));
    }

    [Test]
    public void AllcloseExcessAgreesWithTorchAllclose()
    {
        // torch.allclose is the independent judge: on 200 random pairs, half of them outside the budget somewhere,
        // excess ≤ 1 exactly where allclose holds.
        using var scope = NewDisposeScope();
        var g = new Generator(11);
        var tolerance = GoldenBounds.Exact.Gradients;
        var (held, broken) = (0, 0);
        for (var i = 0; i < 200; i++)
        {
            var reference = randn(64, dtype: ScalarType.Float64, generator: g) * 0.3;
            var budget = reference.abs() * tolerance.Rtol + tolerance.Atol;
            // Noise of up to 0.6-1.4 budgets: some pairs stay inside everywhere, others leave it somewhere.
            var actual = reference + budget * (rand(64, dtype: ScalarType.Float64, generator: g) * 2 - 1) * (0.6 + 0.8 * (i % 2));
            var excess = Comparison.AllcloseExcess(actual, reference, tolerance);
            var allclose = actual.allclose(reference, rtol: tolerance.Rtol, atol: tolerance.Atol);
            Assert.That(excess <= Tolerance.ExcessBound, Is.EqualTo(allclose), $"pair {i}: excess {excess}");
            if (allclose) held++; else broken++;
        }
        Assert.That(held, Is.GreaterThan(50), "enough pairs inside the budget");
        Assert.That(broken, Is.GreaterThan(50), "enough pairs outside it");
    }

    [Test]
    public void LossMeasures()
    {
        // |6.3 − 6.25| = 0.05, |6.2 − 6.3| = 0.1
        Assert.That(Comparison.MaxAbsDiff([6.3, 6.2], [6.25, 6.3]), Is.EqualTo(0.1).Within(1e-12));
        Assert.That(Comparison.LossGap(6.2, 6.3), Is.EqualTo(0.1).Within(1e-12));
        // |2 − 2.5| / 2.5 = 0.2, |3.3 − 3| / 3 = 0.1: relative to the second argument
        Assert.That(Comparison.MaxRelativeDiff([2, 3.3], [2.5, 3]), Is.EqualTo(0.2).Within(1e-12));
        Assert.That(Comparison.FinalOverFirst([6.5, 4.0, 2.6]), Is.EqualTo(0.4).Within(1e-12));
    }

    [Test]
    public void NaNFailsEveryBound()
    {
        using var scope = NewDisposeScope();
        var nan = T(1, double.NaN, 3);
        var ok = T(1, 2, 3);
        foreach (var value in new[]
                 {
                     Comparison.MaxAbsDiff(nan, ok), Comparison.RelL2(nan, ok), Comparison.CosineGap(nan, ok),
                     Comparison.AllcloseExcess(nan, ok, GoldenBounds.Exact.Gradients),
                     Comparison.MaxAbsDiff([1.0, double.NaN], [1.0, 2.0]), Comparison.MaxRelativeDiff([double.NaN, 1.0], [1.0, 1.0]),
                 })
        {
            Assert.That(value, Is.NaN);
            Assert.That(new CheckResult("x", "y", value, double.MaxValue).Passed, Is.False);
        }
    }

    [Test]
    public void MismatchedShapesAreRefusedNotBroadcast()
    {
        using var scope = NewDisposeScope();
        // (3) against (1, 3) would broadcast to a silent pass; (2, 3) against (3) would compare each row with one.
        var e = Assert.Throws<ArgumentException>(() => Comparison.MaxAbsDiff(T(1, 2, 3), T(1, 2, 3).view(1, 3)));
        Assert.That(e!.Message, Is.EqualTo("shapes differ: [3] vs [1, 3]"));
        Assert.Throws<ArgumentException>(() => Comparison.RelL2(T(1, 2, 3, 4, 5, 6).view(2, 3), T(1, 2, 3)));
        Assert.Throws<ArgumentException>(() => Comparison.MaxAbsDiff([1.0, 2.0], [1.0]));
    }
}
