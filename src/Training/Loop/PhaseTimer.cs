using System.Diagnostics;
using Qwen35.Models;
using Qwen35.Training.Bench;
using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Training.Loop;

/// <summary>
/// Wall time and ATen operator count per named phase of a training step, for `trainer bench --profile`. CUDA runs
/// asynchronously, so the timer waits for the device before and after each phase: the work a phase queued is charged
/// to that phase. Those waits cost throughput, which is why the bench profiles extra steps after the timed ones
/// instead of timing with it. The model reports its own phases (forward/recompute/backward per layer type) through
/// <see cref="IPhaseObserver"/>. Operators are counted only while an <see cref="OpCounter"/> runs (zero otherwise).
/// </summary>
public sealed class PhaseTimer(Device device) : IPhaseObserver
{
    readonly List<string> _order = [];
    readonly Dictionary<string, PhaseTotal> _totals = [];

    public void Time(string phase, Action body)
    {
        Sync();
        var (top, all) = (OpCounter.TopLevel, OpCounter.All);
        var names = OpCounter.TopLevelByName().ToDictionary(x => x.Name, x => x.Calls);
        var sw = Stopwatch.StartNew();
        body();
        Sync();
        var seconds = sw.Elapsed.TotalSeconds;
        var byName = OpCounter.TopLevelByName().Select(x => (x.Name, Calls: x.Calls - names.GetValueOrDefault(x.Name)))
            .Where(x => x.Calls > 0).ToDictionary(x => x.Name, x => x.Calls);
        Add(phase, seconds, OpCounter.TopLevel - top, OpCounter.All - all, byName);
    }

    public T Time<T>(string phase, Func<T> body)
    {
        var result = default(T)!;
        Time(phase, () => { result = body(); });
        return result;
    }

    /// <summary>Phases in first-seen order with their totals.</summary>
    public IReadOnlyList<PhaseTotal> Totals => _order.Select(p => _totals[p]).ToList();

    void Add(string phase, double seconds, long top, long all, Dictionary<string, long> byName)
    {
        if (!_totals.TryGetValue(phase, out var t)) _order.Add(phase);
        if (t is not null)
            foreach (var (name, calls) in t.TopLevelByName) byName[name] = byName.GetValueOrDefault(name) + calls;
        _totals[phase] = new PhaseTotal(phase, (t?.Seconds ?? 0) + seconds, (t?.Calls ?? 0) + 1, (t?.TopLevelOps ?? 0) + top, (t?.AllOps ?? 0) + all, byName);
    }

    void Sync()
    {
        if (device.type == DeviceType.CUDA) torch.cuda.synchronize(device);
    }
}

/// <summary>Totals of one phase: seconds, calls, and ATen operator calls at top level and in all (<see cref="OpCounter"/>),
/// and the top-level calls by operator name (in backward, one per autograd node: "autograd::engine::evaluate_function:
/// MmBackward0").</summary>
public sealed record PhaseTotal(string Phase, double Seconds, int Calls, long TopLevelOps, long AllOps, IReadOnlyDictionary<string, long> TopLevelByName);
