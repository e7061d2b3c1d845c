using Qwen35.Lora;
using Qwen35.Models;
using Qwen35.Tests;
using Qwen35.Training.Loop;

namespace Qwen35.Training.Tests;

public class LrScheduleTests
{
    [Test]
    public void WarmupRisesLinearlyToThePeak()
    {
        var s = new LrSchedule(1e-3, 4, 20, LrSchedulerKind.Cosine);
        Assert.That(Enumerable.Range(0, 4).Select(s.At), Is.EqualTo(new[] { 2.5e-4, 5e-4, 7.5e-4, 1e-3 }).Within(1e-15));
        Assert.That(s.At(4), Is.EqualTo(1e-3).Within(1e-15), "decay starts at the peak");
    }

    [TestCase(LrSchedulerKind.Cosine)]
    [TestCase(LrSchedulerKind.Linear)]
    public void DecayIsMonotoneAndReachesTheFloorAfterTheLastStep(LrSchedulerKind kind)
    {
        var s = new LrSchedule(1.0, 2, 12, kind, MinLrRatio: 0.1);
        var values = Enumerable.Range(2, 11).Select(s.At).ToArray();
        Assert.That(values, Is.Ordered.Descending);
        Assert.That(s.At(12), Is.EqualTo(0.1).Within(1e-12));
        // Halfway through the decay: cosine and linear both give the mid-point between peak and floor.
        Assert.That(s.At(7), Is.EqualTo(0.55).Within(1e-12));
    }

    [Test]
    public void ConstantStaysAtPeakAndCosineMatchesTheFormula()
    {
        Assert.That(new LrSchedule(3e-4, 0, 10, LrSchedulerKind.Constant).At(9), Is.EqualTo(3e-4));
        var c = new LrSchedule(2.0, 0, 8, LrSchedulerKind.Cosine);
        Assert.That(c.At(2), Is.EqualTo(2.0 * 0.5 * (1 + Math.Cos(Math.PI * 2 / 8))).Within(1e-12));
    }

    [Test]
    public void WarmupRatioRoundsUp()
    {
        Assert.That(LrSchedule.WarmupFor(null, 0.03, 100), Is.EqualTo(3));
        Assert.That(LrSchedule.WarmupFor(null, 0.03, 10), Is.EqualTo(1));
        Assert.That(LrSchedule.WarmupFor(5, 0.5, 100), Is.EqualTo(5));
    }
}
