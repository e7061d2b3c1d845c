using Qwen35.Models.Runtime;

namespace Qwen35.Models.Tests.Runtime;

/// <summary>
/// <see cref="HostMemory.KeepFreedPages"/> reaches glibc's mallopt and glibc accepts both settings (mallopt returns 0
/// for a parameter or value it refuses). What the setting buys is measured, not tested: step times and page faults of
/// <c>trainer bench</c> under <c>/usr/bin/time</c> (docs/performance.md, "Freed pages kept").
/// </summary>
public class HostMemoryTests
{
    [Test]
    public void GlibcAcceptsTheSettings()
    {
        Assert.That(HostMemory.KeepFreedPages(), Is.True, "mallopt(M_MMAP_MAX, 0) and mallopt(M_TRIM_THRESHOLD, INT_MAX) on this glibc");
        Assert.That(HostMemory.KeepFreedPages(), Is.True, "a second call reports the first one's result");
    }
}
