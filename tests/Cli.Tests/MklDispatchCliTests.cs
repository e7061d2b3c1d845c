namespace Qwen35.Cli.Tests;

/// <summary>
/// A CPU run selects MKL's instruction-set dispatch on a non-Intel x86 CPU, before its first product, and says so in
/// its log (<c>MklDispatch</c>). Run as a fresh process, since MKL takes the setting only before any product; the
/// expectation comes from /proc/cpuinfo's vendor, independently of the code's own CPUID read.
/// </summary>
public class MklDispatchCliTests
{
    [Test]
    public void ACpuBenchSelectsTheDispatchItsCpuCallsFor()
    {
        var vendor = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("vendor_id", StringComparison.Ordinal))?.Split(':')[1].Trim();
        Assert.That(vendor, Is.Not.Null, "an x86 Linux machine has a vendor_id line");
        var (exit, stdout, stderr) = CliRunner.RunProcess("bench", "--shape", "tiny", "--seq", "32", "--steps", "1");
        Assert.That(exit, Is.EqualTo(0), stderr);
        var line = (stdout + stderr).Split('\n').FirstOrDefault(l => l.Contains(" cpu: MKL", StringComparison.Ordinal));
        Assert.That(line, Is.Not.Null, "the bench logs its CPU BLAS dispatch");
        TestContext.Out.WriteLine($"{vendor}: {line!.Trim()}");
        if (Environment.GetEnvironmentVariable("MKL_CBWR") is { Length: > 0 })
            Assert.That(line, Does.Contain("as MKL_CBWR="));
        else if (vendor == "GenuineIntel")
            Assert.That(line, Does.Contain("default dispatch (Intel CPU)"));
        else
            Assert.That(line, Does.Contain($"instruction-set dispatch ({vendor} CPU, CNR auto)"));
    }
}
