using Qwen35.Lora;
using Qwen35.Models.SafeTensors;
using Qwen35.Tests;
using Qwen35.Training.Checkpointing;
using Qwen35.Training.Loop;
using Qwen35.Training.Observability;
using Serilog;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Qwen35.Training.Tests;

/// <summary>Resume exactness with the optimizer over flat storage (what training builds, <see cref="LoraAdamW"/>), and
/// the checkpoint's per-parameter optimizer layout shared by the flat and the per-tensor optimizer.</summary>
public class FlatResumeTests
{
    static readonly ILogger Quiet = new LoggerConfiguration().CreateLogger();

    sealed record Run(TrainLoop Loop, List<(string Name, Parameter Param)> Trainable, AdamW Optimizer);

    static Run Make(string outputDir, int totalSteps, bool flat, int saveEvery = 4)
    {
        var (model, trainable) = TinySetup.Model(1);
        var g = new Generator(11);
        var data = Enumerable.Range(0, 6).Select(i => TinySetup.Batch(g, [10 + i, 16], [6, 8 + i % 3], [0, 1])).ToList();
        var eval = new[] { TinySetup.Batch(g, [12, 14], [8, 8], [0, 1]) };
        var optimizer = flat
            ? LoraAdamW.Create(trainable, lr: 1e-2, weightDecay: 0.01)
            : torch.optim.AdamW(trainable.Select(p => p.Param), lr: 1e-2, weight_decay: 0.01);
        var options = new TrainLoopOptions
        {
            TotalSteps = totalSteps, GradAccum = 2, Schedule = new LrSchedule(1e-2, 2, totalSteps, LrSchedulerKind.Cosine),
            OutputDir = outputDir, SaveEvery = saveEvery, KeepLast = 2, EvalEvery = 4, Seed = 1,
        };
        var loop = new TrainLoop(model, trainable, optimizer, new TinySetup.ListSource(data, 1), eval, ["a", "b"],
            options, Quiet, dir => Directory.CreateDirectory(dir));
        return new Run(loop, trainable, optimizer);
    }

    [Test]
    public void FlatResumedRunReproducesTheUninterruptedLossCurveExactly()
    {
        var continuousDir = TestPaths.TempDir("flat-resume-a");
        var continuous = Make(continuousDir, 8, flat: true).Loop.Run();
        var interruptedDir = TestPaths.TempDir("flat-resume-b");
        Make(interruptedDir, 8, flat: true).Loop.Run(stopAfterStep: 4);

        var again = Make(interruptedDir, 8, flat: true);
        var state = CheckpointStore.Load(new CheckpointStore(interruptedDir, 2).Resolve("latest"), again.Trainable, again.Optimizer);
        var resumed = again.Loop.Run(state);

        var a = MetricsWriter.Read(Path.Combine(continuousDir, "metrics.jsonl"));
        var b = MetricsWriter.Read(Path.Combine(interruptedDir, "metrics.jsonl"));
        Assert.That(b.Select(r => r.Loss), Is.EqualTo(a.Select(r => r.Loss)), "bit-exact loss curve");
        Assert.That(b.Select(r => r.GradNorm), Is.EqualTo(a.Select(r => r.GradNorm)));
        Assert.That(b.Select(r => r.EvalLoss), Is.EqualTo(a.Select(r => r.EvalLoss)));
        Assert.That(resumed.State.TrainedTokens, Is.EqualTo(continuous.State.TrainedTokens));
    }

    [Test]
    public void APerTensorCheckpointLoadsIntoTheFlatOptimizerSliceBySlice()
    {
        // Written before flat storage (per-tensor AdamW, one state per parameter) ...
        var dir = TestPaths.TempDir("flat-layout");
        var perTensor = Make(dir, 4, flat: false, saveEvery: 4);
        perTensor.Loop.Run();
        var checkpoint = new CheckpointStore(dir, 2).Resolve("latest");

        // ... read into the flat optimizer: every slice of its moments holds that parameter's moments.
        var flat = Make(TestPaths.TempDir("flat-layout-b"), 4, flat: true);
        CheckpointStore.Load(checkpoint, flat.Trainable, flat.Optimizer);
        var flatState = (AdamW.State)flat.Optimizer.state_dict().State[0];
        var layout = LoraAdamW.Flat(flat.Optimizer)!;
        var states = perTensor.Optimizer.state_dict().State;
        for (var i = 0; i < perTensor.Trainable.Count; i++)
        {
            var s = (AdamW.State)states[i];
            Assert.That(FlatLoraParameters.SliceOf(flatState.exp_avg, layout.Slices[i]).equal(s.exp_avg).all().item<bool>(), Is.True);
            Assert.That(FlatLoraParameters.SliceOf(flatState.exp_avg_sq, layout.Slices[i]).equal(s.exp_avg_sq).all().item<bool>(), Is.True);
            Assert.That(flat.Trainable[i].Param.equal(perTensor.Trainable[i].Param).all().item<bool>(), Is.True);
            Assert.That(flatState.step, Is.EqualTo(s.step));
        }
    }

    [Test]
    public void AFlatLoadRefusesDisagreeingStepCounts()
    {
        // The flat optimizer keeps one step count; a file whose parameters disagree is not one this trainer wrote.
        var dir = TestPaths.TempDir("flat-steps");
        var run = Make(dir, 4, flat: false, saveEvery: 4);
        run.Loop.Run();
        var checkpoint = new CheckpointStore(dir, 2).Resolve("latest");
        var path = Path.Combine(checkpoint, "optimizer.safetensors");
        var first = run.Trainable[0].Name + ".step";
        List<(string, Tensor)> tensors;
        using (var f = SafeTensorsFile.Open(path))
            tensors = f.Tensors.Keys.Select(k => (k, k == first ? tensor(new long[] { 99 }) : f.Load(k).clone())).ToList();
        SafeTensorsWriter.Write(path, tensors);

        var flat = Make(TestPaths.TempDir("flat-steps-b"), 4, flat: true);
        var e = Assert.Throws<UserInputException>(() => CheckpointStore.Load(checkpoint, flat.Trainable, flat.Optimizer));
        Assert.That(e!.Message, Is.EqualTo($"{path}: tensor '{run.Trainable[1].Name}.step' is 4, other parameters have 99; the flat optimizer keeps one step count"));
    }
}
