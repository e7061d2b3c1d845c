namespace Qwen35.Training.Tests;

public class TrainInterruptTests
{
    [Test]
    public void TheFirstPressCancelsTheTokenAndLaterPressesMeanStopNow()
    {
        using var interrupt = new TrainInterrupt();
        Assert.That((interrupt.Requested, interrupt.Token.IsCancellationRequested), Is.EqualTo((false, false)));
        Assert.That(interrupt.Press(), Is.True);
        Assert.That((interrupt.Requested, interrupt.Token.IsCancellationRequested), Is.EqualTo((true, true)));
        Assert.That(interrupt.Press(), Is.False);
        Assert.That(interrupt.Press(), Is.False);
    }
}
