using System.Runtime.InteropServices;

namespace Qwen35.Distributed;

/// <summary>
/// The NCCL calls of a data-parallel all-reduce (NCCL has no .NET package). <c>libnccl.so.2</c> is found on the library
/// path or next to PyTorch's CUDA libraries (<c>site-packages/nvidia/nccl/lib</c>, beside the <c>torch/lib</c> that
/// LD_LIBRARY_PATH names on a GPU machine; docs/gpu.md).
/// </summary>
static partial class Nccl
{
    const string Lib = "libnccl.so.2";
    public const int Int64 = 4, Float32 = 7, Float64 = 8;   // ncclDataType_t
    public const int Sum = 0;                               // ncclRedOp_t

    [StructLayout(LayoutKind.Sequential)]
    public unsafe struct UniqueId { public fixed byte Internal[128]; }   // NCCL_UNIQUE_ID_BYTES

    static nint handle;

    /// <summary>True when libnccl could be loaded (then the imports below resolve to it).</summary>
    public static bool TryLoad()
    {
        if (handle != 0) return true;
        if (NativeLibrary.TryLoad(Lib, out handle)) return true;
        foreach (var dir in (Environment.GetEnvironmentVariable("LD_LIBRARY_PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            // .../site-packages/torch/lib -> .../site-packages/nvidia/nccl/lib
            var candidate = Path.GetFullPath(Path.Combine(dir, "..", "..", "nvidia", "nccl", "lib", Lib));
            if (File.Exists(candidate) && NativeLibrary.TryLoad(candidate, out handle))
            {
                NativeLibrary.SetDllImportResolver(typeof(Nccl).Assembly, (name, _, _) => name == Lib ? handle : 0);
                return true;
            }
        }
        return false;
    }

    public static void Check(int code, string call)
    {
        if (code != 0) throw new InvalidOperationException($"{call} failed: {Marshal.PtrToStringUTF8(GetErrorString(code))} (NCCL error {code})");
    }

    [LibraryImport(Lib, EntryPoint = "ncclGetUniqueId")] public static partial int GetUniqueId(out UniqueId id);
    [LibraryImport(Lib, EntryPoint = "ncclCommInitRank")] public static partial int CommInitRank(out nint comm, int nranks, UniqueId id, int rank);
    [LibraryImport(Lib, EntryPoint = "ncclAllReduce")] public static partial int AllReduce(nint send, nint recv, nuint count, int datatype, int op, nint comm, nint stream);
    [LibraryImport(Lib, EntryPoint = "ncclCommDestroy")] public static partial int CommDestroy(nint comm);
    [LibraryImport(Lib, EntryPoint = "ncclCommAbort")] public static partial int CommAbort(nint comm);
    [LibraryImport(Lib, EntryPoint = "ncclGetErrorString")] public static partial nint GetErrorString(int result);
}
