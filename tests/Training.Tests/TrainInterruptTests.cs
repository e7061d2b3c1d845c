namespace Qwen35.Training.Tests;

public class TrainInterruptTests
{
    [Test]
    public void TheFirstPressCancelsTheTokenAndLaterPressesMeanStopNow()
    {
        using var interrupt = new TrainInterrupt();
        Assert.That(interrupt.Token.IsCancellationRequested, Is.False);
        Assert.That(interrupt.Press(), Is.True);
        Assert.That(interrupt.Token.IsCancellationRequested, Is.True);
        Assert.That(interrupt.Press(), Is.False);
        Assert.That(interrupt.Press(), Is.False);
    }
}
