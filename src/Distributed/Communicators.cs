using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Distributed;

/// <summary>The one place that decides how this process talks to the others of its job.</summary>
public static class Communicators
{
    /// <summary>No launch: <see cref="SingleProcess"/>. A launch on CPU: MPI. A launch on CUDA: NCCL when libnccl is
    /// there, else MPI staging through the host. <paramref name="note"/> receives a line for the log.</summary>
    public static ICommunicator Create(LaunchInfo? launch, Device device, Action<string>? note = null)
    {
        if (launch is null) return SingleProcess.Instance;
        var mpi = MpiCommunicator.Initialize(launch);
        if (device.type != DeviceType.CUDA) return mpi;
        if (Environment.GetEnvironmentVariable("QWEN35_NO_NCCL") is not "1" && NcclCommunicator.TryCreate(mpi, device) is { } nccl)
            return nccl;
        note?.Invoke("NCCL (libnccl.so.2) not found: gradients are all-reduced through MPI on the host (slower); see docs/distributed.md");
        return mpi;
    }
}
