using System.Globalization;
using TorchSharp;
using static TorchSharp.torch;
using Qwen35.Models;

namespace Qwen35.Training.Verification;

/// <summary>torch.allclose's tolerance: <c>|actual − reference| ≤ Atol + Rtol·|reference|</c> element by element.</summary>
public readonly record struct Tolerance(double Atol, double Rtol)
{
    /// <summary>The bound for <see cref="Comparison.AllcloseExcess"/>: at most 1 means allclose holds.</summary>
    public const double ExcessBound = 1.0;

    /// <summary>What <see cref="Comparison.AllcloseExcess"/> measures with this tolerance, for a report.</summary>
    public string Measure => $"max |Δ|/({Format(Atol)}+{Format(Rtol)}|ref|)";

    static string Format(double v) => v.ToString("0.##e-0", CultureInfo.InvariantCulture);
}

/// <summary>
/// The measures the golden comparisons judge (<c>trainer verify</c> and the golden tests use these and only these):
/// each turns two results into one number that a bound of <see cref="GoldenBounds"/> must not exceed. Tensors are
/// compared in float64 on the CPU, so the measure adds no rounding of its own to the error it measures, and whatever
/// dtype or device they were computed in. Shapes must match exactly: a broadcast would compare the wrong elements
/// and could hide the very error the check is for. A NaN anywhere gives NaN, which fails every bound (except in
/// <see cref="ArgmaxDisagreement"/>, where torch's argmax takes NaN as the largest value; the other measures of the
/// same tensors catch it).
/// </summary>
public static class Comparison
{
    /// <summary>max |actual − expected| over all elements.</summary>
    public static double MaxAbsDiff(Tensor actual, Tensor expected)
    {
        using var scope = NewDisposeScope();
        var (a, e) = Float64(actual, expected);
        return a.numel() == 0 ? 0 : (a - e).abs().max().ToDouble();
    }

    /// <summary>‖actual − reference‖₂ / ‖reference‖₂ over all elements: the error relative to the reference's size.</summary>
    public static double RelL2(Tensor actual, Tensor reference)
    {
        using var scope = NewDisposeScope();
        var (a, r) = Float64(actual, reference);
        return ((a - r).norm() / r.norm()).ToDouble();
    }

    /// <summary>The fraction of rows (every index but the last dimension) whose argmax over the last dimension differs:
    /// for logits, the share of positions that would predict another token.</summary>
    public static double ArgmaxDisagreement(Tensor actual, Tensor reference)
    {
        using var scope = NewDisposeScope();
        var (a, r) = Float64(actual, reference);
        return 1 - a.argmax(-1).eq(r.argmax(-1)).to(ScalarType.Float64).mean().ToDouble();
    }

    /// <summary>1 − cosine of the two tensors flattened to vectors: 0 for the same direction, 1 for orthogonal, 2 for
    /// opposite; blind to scale, so it judges direction where element-wise bounds cannot hold (bf16 gradients).</summary>
    public static double CosineGap(Tensor actual, Tensor reference)
    {
        using var scope = NewDisposeScope();
        var (a, r) = Float64(actual, reference);
        return 1 - nn.functional.cosine_similarity(a.flatten(), r.flatten(), 0).ToDouble();
    }

    /// <summary>torch.allclose as a number: max |actual − reference| / (atol + rtol·|reference|), so
    /// <c>≤ <see cref="Tolerance.ExcessBound"/></c> exactly when <c>actual.allclose(reference, rtol, atol)</c> holds,
    /// and the value says how close to the edge it is (0.1: a tenth of the budget used).</summary>
    public static double AllcloseExcess(Tensor actual, Tensor reference, Tolerance tolerance)
    {
        using var scope = NewDisposeScope();
        var (a, r) = Float64(actual, reference);
        return a.numel() == 0 ? 0 : ((a - r).abs() / (r.abs() * tolerance.Rtol + tolerance.Atol)).max().ToDouble();
    }

    /// <summary>max |actual[i] − expected[i]|: the loss gap over several sequences.</summary>
    public static double MaxAbsDiff(IReadOnlyList<double> actual, IReadOnlyList<double> expected)
    {
        SameLength(actual, expected);
        var max = 0.0;
        for (var i = 0; i < actual.Count; i++)
        {
            var d = Math.Abs(actual[i] - expected[i]);
            if (double.IsNaN(d)) return double.NaN;
            max = Math.Max(max, d);
        }
        return max;
    }

    /// <summary>|actual − expected| for one loss.</summary>
    public static double LossGap(double actual, double expected) => Math.Abs(actual - expected);

    /// <summary>max |actual[i] − reference[i]| / |reference[i]|: a loss curve against a reference curve, step by step.</summary>
    public static double MaxRelativeDiff(IReadOnlyList<double> actual, IReadOnlyList<double> reference)
    {
        SameLength(actual, reference);
        var max = 0.0;
        for (var i = 0; i < actual.Count; i++)
        {
            var d = Math.Abs(actual[i] - reference[i]) / Math.Abs(reference[i]);
            if (double.IsNaN(d)) return double.NaN;
            max = Math.Max(max, d);
        }
        return max;
    }

    /// <summary>The last loss over the first: below 1 when a run learns.</summary>
    public static double FinalOverFirst(IReadOnlyList<double> losses) =>
        losses.Count == 0 ? throw new ArgumentException("no losses to compare") : losses[^1] / losses[0];

    static (Tensor, Tensor) Float64(Tensor a, Tensor b)
    {
        if (!a.shape.SequenceEqual(b.shape))
            throw new ArgumentException($"shapes differ: {Shapes.Format(a.shape)} vs {Shapes.Format(b.shape)}");
        return (a.detach().cpu().to(ScalarType.Float64), b.detach().cpu().to(ScalarType.Float64));
    }

    static void SameLength(IReadOnlyList<double> a, IReadOnlyList<double> b)
    {
        if (a.Count != b.Count) throw new ArgumentException($"lengths differ: {a.Count} vs {b.Count}");
    }
}
