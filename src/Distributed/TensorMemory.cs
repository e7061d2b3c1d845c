using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace Qwen35.Distributed;

/// <summary>The address of a tensor's first element (host or device memory), for collectives that take raw buffers.</summary>
static partial class TensorMemory
{
    /// <summary>Requires a contiguous tensor; the address stays valid while the tensor lives and is not resized.</summary>
    public static nint DataPointer(Tensor t)
    {
        if (!t.is_contiguous()) throw new ArgumentException("a collective needs a contiguous tensor", nameof(t));
        return Data(t.Handle);
    }

    // TorchSharp's own native library: at::Tensor::data_ptr() of the tensor behind the handle.
    [LibraryImport("LibTorchSharp", EntryPoint = "THSTensor_data")] private static partial nint Data(nint handle);
}
