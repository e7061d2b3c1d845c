using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using TorchSharp;

namespace Qwen35.Models.Runtime;

/// <summary>
/// libtorch's CPU matrix products are Intel MKL's. On an x86 CPU that is not Intel's, MKL's default dispatch picks
/// slower kernels than the CPU's instruction set allows; MKL's Conditional Numerical Reproducibility mode with
/// automatic branch selection (<c>MKL_CBWR_AUTO</c>) dispatches by instruction set instead, with fixed cache sizes,
/// deterministic reductions and static scheduling. On this project's AMD EPYC (AVX-512, 2 threads) the 9B shape's
/// [256 × 4,096] · [4,096 × 12,288] fp32 products went from 117-120 to 150-156 GFLOP/s forward and from 142 to
/// 154-167 backward (docs/performance.md, "MKL's dispatch on AMD"). This selects that mode on non-Intel x86 CPUs, once,
/// before the process's first product (MKL refuses a change afterwards); Intel CPUs keep MKL's default, and a user's
/// own <c>MKL_CBWR</c> environment variable is left to decide.
/// </summary>
public static class MklDispatch
{
    const int CbwrBranch = 1, CbwrAuto = 2, CbwrSuccess = 0, CbwrModeChangeFailure = -8;

    static readonly object Gate = new();
    static string? _status;

    /// <summary>What <see cref="Select"/> did, in words for the log (null before it ran).</summary>
    public static string? Status { get { lock (Gate) return _status; } }

    /// <summary>Selects instruction-set dispatch where it applies (see the class); returns <see cref="Status"/>.
    /// Later calls return the first call's status.</summary>
    public static string Select()
    {
        lock (Gate) return _status ??= Decide();
    }

    static string Decide()
    {
        if (Environment.GetEnvironmentVariable("MKL_CBWR") is { Length: > 0 } own) return $"MKL dispatch as MKL_CBWR={own} sets it";
        if (!X86Base.IsSupported) return "MKL default dispatch (not an x86 CPU)";
        var vendor = Vendor();
        if (vendor == "GenuineIntel") return "MKL default dispatch (Intel CPU)";
        torch.InitializeDeviceType(DeviceType.CPU);   // libtorch (and MKL in it) loaded
        var dir = LibTorchCompatibility.LoadedFrom("libtorch_cpu.so");
        if (dir is null || !NativeLibrary.TryLoad(Path.Combine(dir, "libtorch_cpu.so"), out var lib)
            || !NativeLibrary.TryGetExport(lib, "mkl_serv_cbwr_set", out var set)
            || !NativeLibrary.TryGetExport(lib, "mkl_serv_cbwr_get", out var get))
            return $"MKL default dispatch ({vendor} CPU; this libtorch exposes no MKL dispatch setting)";
        unsafe
        {
            // Already in force (set before), or set now.
            var result = ((delegate* unmanaged<int, int>)get)(CbwrBranch) == CbwrAuto ? CbwrSuccess : ((delegate* unmanaged<int, int>)set)(CbwrAuto);
            return result == CbwrSuccess ? $"MKL instruction-set dispatch ({vendor} CPU, CNR auto)"
                : result == CbwrModeChangeFailure ? $"MKL default dispatch ({vendor} CPU; a product ran before the setting)"
                : $"MKL default dispatch ({vendor} CPU; MKL refused CNR auto: {result})";
        }
    }

    static string Vendor()
    {
        var (_, ebx, ecx, edx) = X86Base.CpuId(0, 0);
        Span<int> words = [ebx, edx, ecx];
        return System.Text.Encoding.ASCII.GetString(MemoryMarshal.AsBytes(words));
    }
}
