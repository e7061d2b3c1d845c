using System.Runtime.InteropServices;

namespace Qwen35.Training.Observability;

/// <summary>
/// GPU memory through NVML (libnvidia-ml.so.1), because TorchSharp exposes no CUDA memory statistics. The number is
/// device-wide "used" memory: the caching allocator's reserve plus any other process on that GPU.
/// </summary>
public static class Nvml
{
    [StructLayout(LayoutKind.Sequential)]
    struct Memory
    {
        public ulong Total;
        public ulong Free;
        public ulong Used;
    }

    [DllImport("libnvidia-ml.so.1", EntryPoint = "nvmlInit_v2")]
    static extern int Init();

    [DllImport("libnvidia-ml.so.1", EntryPoint = "nvmlDeviceGetHandleByIndex_v2")]
    static extern int DeviceByIndex(uint index, out IntPtr device);

    [DllImport("libnvidia-ml.so.1", EntryPoint = "nvmlDeviceGetMemoryInfo")]
    static extern int MemoryInfo(IntPtr device, out Memory memory);

    static bool? _available;

    /// <summary>Used memory of GPU <paramref name="index"/> in MB, or null when NVML is unavailable.</summary>
    public static double? UsedMb(int index = 0)
    {
        try
        {
            if (_available is null) _available = Init() == 0;
            if (_available != true || DeviceByIndex((uint)index, out var device) != 0 || MemoryInfo(device, out var m) != 0) return null;
            return m.Used / 1048576.0;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            _available = false;
            return null;
        }
    }

    /// <summary>Polls <see cref="UsedMb"/> on a background thread and keeps the maximum, until disposed.</summary>
    public sealed class PeakSampler : IDisposable
    {
        readonly Thread _thread;
        volatile bool _stop;
        public double? PeakMb { get; private set; }

        public PeakSampler(int index = 0, int intervalMs = 20)
        {
            _thread = new Thread(() =>
            {
                while (!_stop)
                {
                    if (UsedMb(index) is { } mb && (PeakMb is null || mb > PeakMb)) PeakMb = mb;
                    Thread.Sleep(intervalMs);
                }
            }) { IsBackground = true };
            _thread.Start();
        }

        public void Dispose()
        {
            _stop = true;
            _thread.Join();
        }
    }
}
