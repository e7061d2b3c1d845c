using System.Diagnostics;
using Qwen35.Lora;
using Qwen35.Models;
using Qwen35.Models.Runtime;
using Qwen35.Training.Loop;
using Qwen35.Training.Observability;
using Serilog;
using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Training.Bench;

/// <summary>What to time: a model shape with random weights, a sequence length, a number of steps.</summary>
public sealed record BenchOptions
{
    public required Models.Config.Qwen35TextConfig Config { get; init; }
    public string ShapeName { get; init; } = "";
    public int Sequence { get; init; } = 4096;
    public int Batch { get; init; } = 1;
    public int Steps { get; init; } = 3;
    public string Device { get; init; } = "cpu";
    public Precision Precision { get; init; } = Precision.Fp32;
    public bool Checkpointing { get; init; }
    public LoraOptions Lora { get; init; } = DefaultLora(16);

    /// <summary>The shipped recipes' targets (attention, MLP, DeltaNet input projections) with alpha = 2r.</summary>
    public static LoraOptions DefaultLora(int rank) => new()
    {
        Rank = rank, Alpha = 2 * rank,
        TargetModules = LoraTargets.Names("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "in_proj_qkv", "in_proj_z"),
    };
    /// <summary>Peak dense TFLOP/s for MFU; null = 989 for CUDA bf16 (H100 SXM), else no MFU.</summary>
    public double? PeakTflops { get; init; }
    public long Seed { get; init; } = 0;
    /// <summary>After the timed steps, run this many more with a <see cref="PhaseTimer"/> (0 = no profile).</summary>
    public int ProfileSteps { get; init; }

    /// <summary>Documents packed into each row (equal lengths, the last takes the remainder): 1 = one sequence per
    /// row; more exercises the packed path the trainer uses (per-document attention, chunk-aligned delta rule, no
    /// loss across document boundaries).</summary>
    public int Documents { get; init; } = 1;
}

/// <summary>One phase of the profiled steps: mean seconds and calls per step, its share of the profiled step, and the
/// ATen operator calls per step it issued (<see cref="OpCounter"/>: top level, and with nested calls).</summary>
public sealed record PhaseTime(string Phase, double SecondsPerStep, double CallsPerStep, double Share, double TopLevelOpsPerStep = 0,
    double AllOpsPerStep = 0, IReadOnlyList<OpCalls>? ByName = null);

/// <summary>Operator counts of one whole profiled step (phases and what lies between them) and TorchSharp's host cost
/// per operator on 1-element tensors (out of place: a new handle each; in place), in microseconds.</summary>
public sealed record OpProfile(double TopLevelOpsPerStep, double AllOpsPerStep, double HostMicrosPerOp, double HostMicrosPerInPlaceOp,
    IReadOnlyList<OpCalls>? ByName = null);

/// <summary>Top-level calls per step of one ATen operator ("aten::mm").</summary>
public sealed record OpCalls(string Name, double PerStep);

public sealed record BenchReport(
    BenchOptions Options,
    IReadOnlyList<double> StepSeconds,
    double MeanStepSeconds,
    double TokensPerSecond,
    string PeakMemory,
    FlopCount Flops,
    double? PeakTflops,
    double? Mfu,
    long LoraParameters,
    IReadOnlyList<PhaseTime>? Profile = null,
    long TrainedTokens = 0,
    double? PeakMemoryMib = null,
    OpProfile? Ops = null);

/// <summary>
/// Times full LoRA training steps (forward, chunked loss, backward, clip, AdamW) on random tokens with every position
/// trained. The first step includes one-off costs (allocator growth, kernel selection), so the mean excludes it when
/// there are at least two steps.
/// </summary>
public static class Benchmark
{
    public static BenchReport Run(BenchOptions o, ILogger log)
    {
        var device = Session.ResolveDevice(o.Device);
        var dtype = o.Precision.ToScalarType();
        if (device.type == DeviceType.CUDA) torch.backends.cuda.matmul.allow_tf32 = true;
        else if (MklDispatch.Status is { } blas) log.Information("cpu: {Blas}", blas);
        log.Information("bench: building {Shape} ({Config}) with random weights on {Device} {Dtype}", o.ShapeName, o.Config.Summary(), o.Device, OptionNames.Name(o.Precision));
        using var model = Qwen35ForCausalLM.CreateRandom(o.Config, o.Seed, dtype, device);
        var lora = LoraInjector.Apply(model, o.Lora, o.Seed);
        model.train();
        var trainable = Session.Trainable(model);
        // As training builds it: the LoRA tensors in one flat buffer, AdamW over that buffer (weight decay 0.01,
        // TorchSharp's default, which this bench used before flat storage).
        using var optimizer = LoraAdamW.Create(trainable, lr: 1e-5, weightDecay: 0.01);
        var parameters = LoraAdamW.Parameters(optimizer);
        // Attention FLOPs follow the document length: each token attends within its own document.
        var flops = FlopCount.For(model, o.Sequence / o.Documents);

        var rng = new Random((int)o.Seed);
        var ids = Enumerable.Range(0, o.Batch * o.Sequence).Select(_ => (long)rng.Next(o.Config.VocabSize)).ToArray();
        var docLength = o.Sequence / o.Documents;
        var starts = Enumerable.Range(0, o.Documents).Select(d => d * docLength).ToArray();
        var documents = o.Documents == 1 ? null
            : new PackedDocuments(Enumerable.Repeat(starts, o.Batch).ToArray(), Enumerable.Repeat(o.Sequence, o.Batch).ToArray());
        var batch = new MicroBatch { Rows = o.Batch, Length = o.Sequence, InputIds = ids, Labels = ids, Documents = documents };
        var targets = batch.TargetCount;

        // The same device-side work per step as TrainLoop.Step, including its one host read (loss, norm).
        void Step(int step, PhaseTimer? timer)
        {
            using var scope = NewDisposeScope();
            var tensors = batch.ToTensors(device);
            var loss = LossComputation.ForwardBackwardOnDevice(model, tensors, 1.0 / targets, o.Checkpointing, step, observer: timer);
            void Phase(string name, Action body) { if (timer is null) body(); else timer.Time(name, body); }
            Tensor norm = null!;
            Phase("clip (global norm)", () => norm = GradientClipping.ClipOnDevice(parameters, 1.0)!);
            Phase("read loss + norm", () => _ = stack([loss, norm.to(ScalarType.Float64)]).cpu());
            Phase("AdamW step + zero grads", () =>
            {
                optimizer.step();
                foreach (var p in parameters) p.grad?.zero_();
            });
        }

        var times = new List<double>();
        using var sampler = device.type == DeviceType.CUDA ? new Nvml.PeakSampler() : null;
        for (var step = 0; step < o.Steps; step++)
        {
            var sw = Stopwatch.StartNew();
            Step(step, null);
            if (device.type == DeviceType.CUDA) torch.cuda.synchronize();
            times.Add(sw.Elapsed.TotalSeconds);
            log.Information("bench step {Step}: {Seconds:F3} s", step + 1, sw.Elapsed.TotalSeconds);
        }

        List<PhaseTime>? profile = null;
        OpProfile? ops = null;
        if (o.ProfileSteps > 0)
        {
            var (perOp, perInPlaceOp) = HostCostPerOp(device);
            var timer = new PhaseTimer(device);
            long stepTop, stepAll;
            IReadOnlyList<(string Name, long Calls)> byName;
            using (OpCounter.Start())
            {
                for (var step = 0; step < o.ProfileSteps; step++) Step(o.Steps + step, timer);
                (stepTop, stepAll) = (OpCounter.TopLevel, OpCounter.All);
                byName = OpCounter.TopLevelByName();
            }
            var n = o.ProfileSteps;
            var total = timer.Totals.Sum(t => t.Seconds);
            profile = timer.Totals.Select(t => new PhaseTime(t.Phase, t.Seconds / n, (double)t.Calls / n,
                t.Seconds / total, (double)t.TopLevelOps / n, (double)t.AllOps / n, PerStep(t.TopLevelByName.Select(x => (x.Key, x.Value)), n))).ToList();
            // Uploading the batch, selecting the trained rows, the dispose scopes: ops issued between the phases.
            profile.Add(new PhaseTime("(between phases)", 0, 0, 0,
                (double)(stepTop - timer.Totals.Sum(t => t.TopLevelOps)) / n, (double)(stepAll - timer.Totals.Sum(t => t.AllOps)) / n));
            ops = new OpProfile((double)stepTop / n, (double)stepAll / n, perOp, perInPlaceOp,
                PerStep(byName, n));
            log.Information("bench: profiled {Steps} more steps, {Seconds:F3} s per step with a device sync around every phase, {Ops:F0} ATen ops per step",
                o.ProfileSteps, total / n, ops.TopLevelOpsPerStep);
        }
        var measured = times.Count >= 2 ? times.Skip(1).ToList() : times;
        var mean = measured.Average();
        var tokensPerSecond = o.Batch * o.Sequence / mean;
        // MB here are MiB (2^20 bytes), as NVML and /proc report them.
        var peakMib = device.type == DeviceType.CUDA ? sampler?.PeakMb : ProcessMemory.PeakRssMb();
        string memory = peakMib is not { } mib ? "n/a"
            : device.type == DeviceType.CUDA ? $"{mib:F0} MB (NVML device used, peak of 20 ms samples)" : $"{mib:F0} MB (peak RSS)";
        var peak = o.PeakTflops ?? (device.type == DeviceType.CUDA && dtype == ScalarType.BFloat16 ? 989.0 : null);
        double? mfu = peak is { } tf ? tokensPerSecond * flops.PerToken / (tf * 1e12) : null;
        return new BenchReport(o, times, mean, tokensPerSecond, memory, flops, peak, mfu, lora.TrainableParameters, profile, targets, peakMib, ops);
    }

    // Autograd nodes are reported by libtorch as "autograd::engine::evaluate_function: MmBackward0": shortened to
    // "MmBackward0"; "aten::mm" to "mm".
    static List<OpCalls> PerStep(IEnumerable<(string Name, long Calls)> calls, int steps) =>
        calls.Select(x => new OpCalls(x.Name.Replace("autograd::engine::evaluate_function: ", "").Replace("aten::", ""), (double)x.Calls / steps))
            .OrderByDescending(x => x.PerStep).ThenBy(x => x.Name, StringComparer.Ordinal).ToList();

    /// <summary>
    /// TorchSharp's host cost of one operator: a loop of adds on 1-element tensors, where the arithmetic is nothing and
    /// what remains is the managed call, the P/Invoke, libtorch's dispatcher and (out of place) a new tensor and
    /// its handle. On a GPU this is the floor of a step's host time: ops per step × this cost, against the device
    /// time of the step, says whether the step is launch-bound.
    /// </summary>
    public static (double MicrosPerOp, double MicrosPerInPlaceOp) HostCostPerOp(Device device, int iterations = 20_000)
    {
        using var scope = NewDisposeScope();
        var a = ones(1, device: device);
        var b = ones(1, device: device);
        double Measure(Action op)
        {
            for (var i = 0; i < 1000; i++) op();   // warm-up (JIT, allocator, dispatcher caches)
            if (device.type == DeviceType.CUDA) torch.cuda.synchronize(device);
            var sw = Stopwatch.StartNew();
            for (var i = 0; i < iterations; i++) op();
            if (device.type == DeviceType.CUDA) torch.cuda.synchronize(device);
            return sw.Elapsed.TotalSeconds * 1e6 / iterations;
        }
        var outOfPlace = Measure(() => { using var c = a.add(b); });
        var inPlace = Measure(() => a.add_(b));
        return (outOfPlace, inPlace);
    }
}
