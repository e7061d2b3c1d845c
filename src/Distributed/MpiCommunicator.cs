using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Distributed;

/// <summary>
/// Collectives over MPI's <c>MPI_COMM_WORLD</c>. CPU tensors are reduced in place in their own memory; CUDA tensors are
/// staged through the host (one copy each way): the fallback when NCCL is absent, correct but slow.
/// </summary>
public sealed class MpiCommunicator : ICommunicator
{
    bool disposed;

    MpiCommunicator(int rank, int size)
    {
        Rank = rank;
        WorldSize = size;
    }

    public int Rank { get; }
    public int WorldSize { get; }
    public string Backend => "mpi";

    /// <summary>Initialises MPI (once per process) and checks that MPI sees the job the launcher described.</summary>
    public static MpiCommunicator Initialize(LaunchInfo launch)
    {
        OpenMpi.Load();
        OpenMpi.Check(OpenMpi.Initialized(out var already), "MPI_Initialized");
        if (already == 0) OpenMpi.Check(OpenMpi.InitThread(0, 0, OpenMpi.ThreadSerialized, out _), "MPI_Init_thread");
        OpenMpi.Check(OpenMpi.CommRank(OpenMpi.CommWorld, out var rank), "MPI_Comm_rank");
        OpenMpi.Check(OpenMpi.CommSize(OpenMpi.CommWorld, out var size), "MPI_Comm_size");
        if (rank != launch.Rank || size != launch.WorldSize)
            throw new InvalidOperationException($"MPI says rank {rank} of {size}, the {launch.Launcher} environment said {launch.Rank} of {launch.WorldSize}");
        return new MpiCommunicator(rank, size);
    }

    public void AllReduceSum(Tensor tensor)
    {
        var type = tensor.dtype switch
        {
            ScalarType.Float32 => OpenMpi.Float,
            ScalarType.Float64 => OpenMpi.Double,
            ScalarType.Int64 => OpenMpi.LongLong,
            _ => throw new ArgumentException($"all-reduce of {tensor.dtype} is not supported", nameof(tensor)),
        };
        if (tensor.numel() > int.MaxValue) throw new ArgumentException("all-reduce of more than 2^31 elements", nameof(tensor));
        using var scope = NewDisposeScope();
        var host = tensor.device_type == DeviceType.CPU && tensor.is_contiguous() ? tensor : tensor.cpu().contiguous();
        OpenMpi.Check(OpenMpi.Allreduce(OpenMpi.InPlace, TensorMemory.DataPointer(host), (int)host.numel(), type, OpenMpi.Sum, OpenMpi.CommWorld), "MPI_Allreduce");
        if (!ReferenceEquals(host, tensor)) tensor.copy_(host);
    }

    /// <summary>Rank 0's <paramref name="bytes"/> on every rank (the NCCL unique id travels this way).</summary>
    public byte[] Broadcast(byte[] bytes)
    {
        unsafe
        {
            fixed (byte* p = bytes)
                OpenMpi.Check(OpenMpi.Bcast((nint)p, bytes.Length, OpenMpi.Byte, 0, OpenMpi.CommWorld), "MPI_Bcast");
        }
        return bytes;
    }

    public void Barrier() => OpenMpi.Check(OpenMpi.Barrier(OpenMpi.CommWorld), "MPI_Barrier");

    public void Abort(int exitCode)
    {
        OpenMpi.Abort(OpenMpi.CommWorld, exitCode);
        Environment.Exit(exitCode);   // not reached: MPI_Abort ends the process
    }

    /// <summary>Finalises MPI: every rank must get here (a rank that returns without it makes mpirun report it).</summary>
    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        if (OpenMpi.Finalized(out var done) == 0 && done == 0) OpenMpi.Finalize();
    }
}
