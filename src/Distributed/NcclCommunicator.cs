using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Distributed;

/// <summary>
/// All-reduce of CUDA tensors through NCCL, set up as Horovod does: rank 0 makes the <c>ncclUniqueId</c>, MPI broadcasts
/// it, every rank joins with <c>ncclCommInitRank</c>. The reduction is enqueued on CUDA's legacy default stream, the one
/// libtorch issues TorchSharp's kernels on (TorchSharp never changes the current stream), so it is ordered after the
/// backward that wrote the gradients and before the optimizer that reads them, with no host sync. Barrier and abort go
/// through MPI, which also launched the job.
/// </summary>
public sealed class NcclCommunicator : ICommunicator
{
    readonly MpiCommunicator mpi;
    readonly nint comm;
    readonly Device device;
    bool disposed;

    NcclCommunicator(MpiCommunicator mpi, nint comm, Device device)
    {
        this.mpi = mpi;
        this.comm = comm;
        this.device = device;
    }

    public int Rank => mpi.Rank;
    public int WorldSize => mpi.WorldSize;
    public string Backend => "nccl";

    /// <summary>Joins the NCCL communicator of the job on <paramref name="device"/> (this rank's GPU); null when libnccl
    /// is not to be found (the caller falls back to MPI's host-staged all-reduce).</summary>
    public static NcclCommunicator? TryCreate(MpiCommunicator mpi, Device device)
    {
        if (!Nccl.TryLoad()) return null;
        var id = default(Nccl.UniqueId);
        if (mpi.Rank == 0) Nccl.Check(Nccl.GetUniqueId(out id), "ncclGetUniqueId");
        unsafe
        {
            var bytes = new byte[128];
            if (mpi.Rank == 0)
                for (var i = 0; i < 128; i++) bytes[i] = id.Internal[i];
            mpi.Broadcast(bytes);
            for (var i = 0; i < 128; i++) id.Internal[i] = bytes[i];
        }
        // ncclCommInitRank binds to the thread's current CUDA device: make it this rank's by touching a tensor there
        // (libtorch sets the device for the allocation and leaves it current).
        using (var _ = zeros(1, device: device)) { }
        Nccl.Check(Nccl.CommInitRank(out var comm, mpi.WorldSize, id, mpi.Rank), "ncclCommInitRank");
        return new NcclCommunicator(mpi, comm, device);
    }

    public void AllReduceSum(Tensor tensor)
    {
        if (tensor.device_type != DeviceType.CUDA)
        {
            mpi.AllReduceSum(tensor);
            return;
        }
        var type = tensor.dtype switch
        {
            ScalarType.Float32 => Nccl.Float32,
            ScalarType.Float64 => Nccl.Float64,
            ScalarType.Int64 => Nccl.Int64,
            _ => throw new ArgumentException($"all-reduce of {tensor.dtype} is not supported", nameof(tensor)),
        };
        if (!tensor.is_contiguous()) throw new ArgumentException("NCCL all-reduce needs a contiguous tensor", nameof(tensor));
        var p = TensorMemory.DataPointer(tensor);
        Nccl.Check(Nccl.AllReduce(p, p, (nuint)tensor.numel(), type, Nccl.Sum, comm, 0), "ncclAllReduce");
    }

    public void Barrier()
    {
        // Device work first: a barrier means "everything before it is done" for the caller.
        if (device.type == DeviceType.CUDA) cuda.synchronize(device);
        mpi.Barrier();
    }

    public void Abort(int exitCode)
    {
        Nccl.CommAbort(comm);
        mpi.Abort(exitCode);
    }

    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        Nccl.CommDestroy(comm);
        mpi.Dispose();
    }
}
