using System.Diagnostics;
using Qwen35.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Training.Loop;

/// <summary>
/// Wall time per named phase of a training step, for `trainer bench --profile`. CUDA runs asynchronously, so the
/// timer waits for the device before and after each phase: the work a phase queued is charged to that phase. Those
/// waits cost throughput, which is why the bench profiles extra steps after the timed ones instead of timing with it.
/// The model reports its own phases (forward/recompute/backward per layer type) through <see cref="IPhaseObserver"/>.
/// </summary>
public sealed class PhaseTimer(Device device) : IPhaseObserver
{
    readonly List<string> _order = [];
    readonly Dictionary<string, (double Seconds, int Calls)> _totals = [];

    public void Time(string phase, Action body)
    {
        Sync();
        var sw = Stopwatch.StartNew();
        body();
        Sync();
        Add(phase, sw.Elapsed.TotalSeconds);
    }

    public T Time<T>(string phase, Func<T> body)
    {
        var result = default(T)!;
        Time(phase, () => { result = body(); });
        return result;
    }

    /// <summary>Phases in first-seen order with their total seconds and number of calls.</summary>
    public IReadOnlyList<(string Phase, double Seconds, int Calls)> Totals =>
        _order.Select(p => (p, _totals[p].Seconds, _totals[p].Calls)).ToList();

    void Add(string phase, double seconds)
    {
        if (!_totals.TryGetValue(phase, out var t)) _order.Add(phase);
        _totals[phase] = (t.Seconds + seconds, t.Calls + 1);
    }

    void Sync()
    {
        if (device.type == DeviceType.CUDA) torch.cuda.synchronize(device);
    }
}
