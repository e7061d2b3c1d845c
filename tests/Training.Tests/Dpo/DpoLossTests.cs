using Qwen35.Training.Dpo;
using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Training.Tests.Dpo;

public class DpoLossTests
{
    static DpoLoss.Terms One(DpoOptions o, double c, double r, double refC, double refR, int nc = 1, int nr = 1)
    {
        Tensor T(double v) => tensor(new[] { v }, dtype: ScalarType.Float64);
        return DpoLoss.Compute(o, T(c), T(r), T(refC), T(refR), T(nc), T(nr));
    }

    [Test]
    public void LabelSmoothingGivesTheHandWorkedCdpoLoss()
    {
        // z = (−10 − −14) − (−12 − −12) = 4, βz = 0.4:
        // 0.9·log(1 + e^−0.4) + 0.1·log(1 + e^0.4) = 0.9·0.5130153 + 0.1·0.9130153 = 0.5530153.
        var t = One(new DpoOptions { Beta = 0.1, LabelSmoothing = 0.1 }, -10, -14, -12, -12);
        Assert.That(t.Losses.item<double>(), Is.EqualTo(0.5530152524).Within(1e-9));
        Assert.That(t.ChosenRewards.item<double>(), Is.EqualTo(0.2).Within(1e-12), "β·(−10 − −12)");
        Assert.That(t.RejectedRewards.item<double>(), Is.EqualTo(-0.2).Within(1e-12), "β·(−14 − −12)");
        var m = t.Metrics().data<double>().ToArray();
        Assert.That(m, Is.EqualTo(new[] { 0.5530152524, 0.2, -0.2, 1.0, 0.4, -10, -14 }).Within(1e-9),
            "loss, rewards/chosen, rewards/rejected, rewards/accuracies, rewards/margins, logps/chosen, logps/rejected");
        // Without smoothing: log(1 + e^−0.4) = 0.5130153.
        Assert.That(One(new DpoOptions { Beta = 0.1 }, -10, -14, -12, -12).Losses.item<double>(), Is.EqualTo(0.5130152524).Within(1e-9));
    }

    [Test]
    public void IpoAveragesTheLogProbsOverTheCompletionTokens()
    {
        // Means: π_c = −10/5 = −2, π_r = −14/7 = −2, ref_c = −12/5 = −2.4, ref_r = −12/7; z = 0 − (−2.4 + 12/7) = 0.6857143;
        // (z − 1/(2·0.1))² = (0.6857143 − 5)² = 18.6130612.
        var t = One(new DpoOptions { Beta = 0.1, LossType = DpoLossType.Ipo }, -10, -14, -12, -12, nc: 5, nr: 7);
        Assert.That(t.Losses.item<double>(), Is.EqualTo(18.613061224489794).Within(1e-9));
        Assert.That(t.ChosenLogps.item<double>(), Is.EqualTo(-2).Within(1e-12), "logps/chosen are token means for ipo, as TRL");
        Assert.That(t.ChosenRewards.item<double>(), Is.EqualTo(0.1 * (-2 + 2.4)).Within(1e-12));
    }

    [Test]
    public void TheNllTermAddsAlphaTimesTheChosenTokenMeanCrossEntropy()
    {
        var plain = One(new DpoOptions(), -10, -14, -12, -12, nc: 4).Losses.item<double>();
        var t = One(new DpoOptions { RpoAlpha = 0.5 }, -10, -14, -12, -12, nc: 4);
        Assert.That(t.Losses.item<double>(), Is.EqualTo(plain + 0.5 * (10.0 / 4)).Within(1e-12));
        Assert.That(t.Nll!.item<double>(), Is.EqualTo(2.5).Within(1e-12));
    }

    [Test]
    public void EqualPolicyAndReferenceGiveLog2AndZeroRewards()
    {
        var t = One(new DpoOptions { Beta = 0.3 }, -7.5, -3.25, -7.5, -3.25);
        Assert.That(t.Losses.item<double>(), Is.EqualTo(Math.Log(2)).Within(1e-15));
        Assert.That((t.ChosenRewards.item<double>(), t.RejectedRewards.item<double>()), Is.EqualTo((0.0, 0.0)));
    }
}
