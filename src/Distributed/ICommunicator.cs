using static TorchSharp.torch;

namespace Qwen35.Distributed;

/// <summary>
/// The collectives data-parallel training needs, over all processes of the job. Every rank must make the same calls in
/// the same order (as with any MPI or NCCL communicator); a rank that stops calling stalls the others until the
/// launcher ends the job (<see cref="Abort"/>).
/// </summary>
public interface ICommunicator : IDisposable
{
    int Rank { get; }
    int WorldSize { get; }

    /// <summary>Rank 0: the one process that writes logs, metrics, plots, checkpoints and the adapter.</summary>
    bool IsWriter => Rank == 0;

    /// <summary>What carries the collectives (<c>single</c>, <c>mpi</c>, <c>nccl</c>), for the log.</summary>
    string Backend { get; }

    /// <summary>Sums <paramref name="tensor"/> over all ranks, in place: afterwards every rank holds the same sum.
    /// float32, float64 or int64; any device the communicator serves.</summary>
    void AllReduceSum(Tensor tensor);

    /// <summary>Returns when every rank has called it.</summary>
    void Barrier();

    /// <summary>Ends the whole job now with <paramref name="exitCode"/> (a rank that failed calls it after saying why,
    /// so no other rank waits forever in a collective).</summary>
    void Abort(int exitCode);
}

/// <summary>One process: every collective is the identity. The trainer without a launcher uses it, so a single process
/// runs exactly the code it always ran.</summary>
public sealed class SingleProcess : ICommunicator
{
    public static readonly SingleProcess Instance = new();
    public int Rank => 0;
    public int WorldSize => 1;
    public string Backend => "single";
    public void AllReduceSum(Tensor tensor) { }
    public void Barrier() { }
    public void Abort(int exitCode) => Environment.Exit(exitCode);
    public void Dispose() { }
}
