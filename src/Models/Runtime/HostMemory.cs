using System.Runtime.InteropServices;

namespace Qwen35.Models.Runtime;

/// <summary>
/// Keeps the memory of freed CPU tensors in the process instead of handing it back to the kernel, so a training step
/// reuses the pages the previous step used. libtorch allocates CPU tensors with glibc's malloc, which serves blocks
/// above its mmap threshold (32 MiB at most) as fresh mappings, unmapped again on free, and trims the top of its heap
/// when more than the trim threshold is free there: every step's large activations, logits and gradients were then
/// page-faulted and zeroed by the kernel again (docs/performance.md, "Freed pages kept"). With mmap off and the trim
/// threshold at its maximum, a block comes from the heap and stays there when freed, for the next step's tensors.
/// The price is resident memory: the heap keeps its high-water mark and fragments (the 9B bench's peak RSS +20 %).
/// CUDA tensors are untouched (their memory is the caching allocator's).
/// </summary>
public static partial class HostMemory
{
    // glibc's <malloc.h>.
    const int MTrimThreshold = -1;
    const int MMmapMax = -4;

    static readonly object Gate = new();
    static bool? _kept;

    /// <summary>Sets glibc's malloc to keep freed pages (once per process; later calls return the first result).
    /// True where it took effect; false off glibc (another libc, another OS), where nothing changes.</summary>
    public static bool KeepFreedPages()
    {
        lock (Gate)
        {
            _kept ??= OperatingSystem.IsLinux() && TrySet();
            return _kept.Value;
        }
    }

    static bool TrySet()
    {
        try
        {
            // mallopt returns 1 on success. The trim threshold is an int: 2 GiB free at the top of the heap before
            // any is returned.
            return mallopt(MMmapMax, 0) == 1 & mallopt(MTrimThreshold, int.MaxValue) == 1;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;   // not glibc (musl has no mallopt)
        }
    }

    [LibraryImport("libc.so.6", EntryPoint = "mallopt")]
    private static partial int mallopt(int param, int value);
}
