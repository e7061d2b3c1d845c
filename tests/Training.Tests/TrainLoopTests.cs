using Qwen35.Tests;
using Qwen35.Training.Checkpointing;
using Qwen35.Training.Loop;
using Qwen35.Training.Observability;
using Serilog;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Qwen35.Training.Tests;

public class TrainLoopTests
{
    static readonly ILogger Quiet = new LoggerConfiguration().CreateLogger();

    sealed record Run(TrainLoop Loop, List<(string Name, Parameter Param)> Trainable, AdamW Optimizer, Qwen35.Models.Qwen35ForCausalLM Model);

    static Run Make(string outputDir, int totalSteps, int saveEvery = 0, int keepLast = 2, long seed = 1, int batches = 6, int evalEvery = 4)
    {
        var (model, trainable) = TinySetup.Model(seed);
        var g = new Generator(11);
        var data = Enumerable.Range(0, batches).Select(i => TinySetup.Batch(g, [10 + i, 16], [6, 8 + i % 3], [0, 1])).ToList();
        var eval = new[] { TinySetup.Batch(g, [12, 14], [8, 8], [0, 1]) };
        var optimizer = torch.optim.AdamW(trainable.Select(p => p.Param), lr: 1e-2, weight_decay: 0.01);
        var options = new TrainLoopOptions
        {
            TotalSteps = totalSteps, GradAccum = 2, Schedule = new LrSchedule(1e-2, 2, totalSteps, LrSchedulerKind.Cosine),
            OutputDir = outputDir, SaveEvery = saveEvery, KeepLast = keepLast, EvalEvery = evalEvery, Seed = seed,
        };
        var loop = new TrainLoop(model, trainable, optimizer, new TinySetup.ListSource(data, seed), eval, ["a", "b"],
            options, Quiet, dir => Directory.CreateDirectory(dir));
        return new Run(loop, trainable, optimizer, model);
    }

    [Test]
    public void ResumedRunReproducesTheUninterruptedLossCurveExactly()
    {
        // 8 steps over 6 micro-batches with grad_accum 2 = 3 steps per epoch, so the run crosses two epoch boundaries
        // and the interruption at step 4 lands inside epoch 1.
        var continuousDir = TestPaths.TempDir("resume-a");
        var continuous = Make(continuousDir, 8, saveEvery: 4).Loop.Run();

        var interruptedDir = TestPaths.TempDir("resume-b");
        var first = Make(interruptedDir, 8, saveEvery: 4).Loop.Run(stopAfterStep: 4);
        Assert.That(first.Completed, Is.False);

        // A fresh process would rebuild everything from the recipe, then load the checkpoint on top.
        var again = Make(interruptedDir, 8, saveEvery: 4);
        var store = new CheckpointStore(interruptedDir, 2);
        var dir = store.Resolve("latest");
        Assert.That(Path.GetFileName(dir), Is.EqualTo("step_000004"));
        var state = CheckpointStore.Load(dir, again.Trainable, again.Optimizer);
        var resumed = again.Loop.Run(state);

        var a = MetricsWriter.Read(Path.Combine(continuousDir, "metrics.jsonl"));
        var b = MetricsWriter.Read(Path.Combine(interruptedDir, "metrics.jsonl"));
        Assert.That(b.Select(r => r.Step), Is.EqualTo(Enumerable.Range(1, 8)), "the resumed metrics continue without duplicates");
        Assert.That(b.Select(r => r.Loss), Is.EqualTo(a.Select(r => r.Loss)), "bit-exact loss curve");
        Assert.That(b.Select(r => r.EvalLoss), Is.EqualTo(a.Select(r => r.EvalLoss)));
        Assert.That(resumed.State.TrainedTokens, Is.EqualTo(continuous.State.TrainedTokens));
        Assert.That(a.First().Loss!.Value, Is.GreaterThan(a.Last().Loss!.Value), "training lowers the loss");
    }

    [Test]
    public void AStopRequestCheckpointsTheFinishedStepAndResumesToTheUninterruptedResult()
    {
        // No periodic checkpoints: the one the stop request writes is the only way back. The request arrives during
        // step 5 (inside epoch 1); the step finishes, is checkpointed, and the loop returns.
        var continuousDir = TestPaths.TempDir("stop-a");
        var continuous = Make(continuousDir, 8).Loop.Run();

        var interruptedDir = TestPaths.TempDir("stop-b");
        var first = Make(interruptedDir, 8);
        using var interrupt = new TrainInterrupt();
        first.Loop.OnStep = r =>
        {
            if (r.Step == 5) Assert.That(interrupt.Press(), Is.True, "the first press asks for a graceful stop");
        };
        var stopped = first.Loop.Run(stop: interrupt.Token);
        Assert.That((stopped.Interrupted, stopped.Completed, stopped.State.Step), Is.EqualTo((true, false, 5)));
        Assert.That(stopped.Checkpoint, Is.EqualTo(Path.Combine(interruptedDir, "checkpoints", "step_000005")));
        Assert.That(interrupt.Press(), Is.False, "a second press means stop at once");

        var again = Make(interruptedDir, 8);
        var dir = new CheckpointStore(interruptedDir, 2).Resolve("latest");
        Assert.That(dir, Is.EqualTo(stopped.Checkpoint));
        var resumed = again.Loop.Run(CheckpointStore.Load(dir, again.Trainable, again.Optimizer));

        var a = MetricsWriter.Read(Path.Combine(continuousDir, "metrics.jsonl"));
        var b = MetricsWriter.Read(Path.Combine(interruptedDir, "metrics.jsonl"));
        Assert.That(b.Select(r => r.Step), Is.EqualTo(Enumerable.Range(1, 8)));
        Assert.That(b.Select(r => r.Loss), Is.EqualTo(a.Select(r => r.Loss)), "bit-exact loss curve");
        Assert.That(b.Select(r => r.EvalLoss), Is.EqualTo(a.Select(r => r.EvalLoss)));
        Assert.That(resumed.Completed, Is.True);
        Assert.That(resumed.FinalEval!.Loss, Is.EqualTo(continuous.FinalEval!.Loss));
    }

    [Test]
    public void AStopRequestBeforeTheFirstStepSavesNothing()
    {
        var dir = TestPaths.TempDir("stop-early");
        using var interrupt = new TrainInterrupt();
        interrupt.Press();
        var result = Make(dir, 8, saveEvery: 1).Loop.Run(stop: interrupt.Token);
        Assert.That((result.Interrupted, result.State.Step, result.Checkpoint), Is.EqualTo((true, 0, (string?)null)));
        Assert.That(Directory.Exists(Path.Combine(dir, "checkpoints")), Is.False);
    }

    [Test]
    public void ANonFiniteEvalLossStopsTheRunNamingTheStep()
    {
        // Eval every 4 steps. After step 3 a NaN is put into a frozen weight (the final norm): step 4's update is
        // skipped by the NaN guard (1 of 5 allowed), but its eval loss is NaN, which must end the run there instead of
        // finishing with a broken adapter.
        var dir = TestPaths.TempDir("nan-eval");
        var run = Make(dir, 8, saveEvery: 2);
        var norm = run.Model.named_parameters().Single(p => p.name.EndsWith("norm.weight", StringComparison.Ordinal) && !p.name.Contains(".layers.")).parameter;
        run.Loop.OnStep = r =>
        {
            if (r.Step == 3)
                using (no_grad()) norm[0] = tensor(float.NaN);
        };
        var e = Assert.Throws<TrainingDivergedException>(() => run.Loop.Run());
        Assert.That(e!.Message, Does.Contain("eval loss is NaN at step 4"));
        Assert.That(Directory.GetDirectories(Path.Combine(dir, "checkpoints")).Select(Path.GetFileName), Is.EqualTo(new[] { "step_000002" }),
            "the checkpoint written before is kept; none is written for the failed step");
        var metrics = MetricsWriter.Read(Path.Combine(dir, "metrics.jsonl"));
        Assert.That(metrics[^1].Step, Is.EqualTo(4), "the failed step's metrics (NaN eval loss) are logged");
    }

    [Test]
    public void CheckpointsAreCompleteAndOnlyTheLastKAreKept()
    {
        var dir = TestPaths.TempDir("keep");
        var run = Make(dir, 5, saveEvery: 1, keepLast: 2);
        run.Loop.Run();
        var root = Path.Combine(dir, "checkpoints");
        Assert.That(Directory.GetDirectories(root).Select(Path.GetFileName), Is.EquivalentTo(new[] { "step_000004", "step_000005" }),
            "older checkpoints pruned, no temporary folders left");
        var last = Path.Combine(root, "step_000005");
        Assert.That(Directory.GetFileSystemEntries(last).Select(Path.GetFileName),
            Is.EquivalentTo(new[] { "adapter", "trainable.safetensors", "optimizer.safetensors", "trainer_state.json" }));
        var state = TrainerState.Load(Path.Combine(last, "trainer_state.json"));
        Assert.That((state.Step, state.Epoch, state.MicroBatchInEpoch), Is.EqualTo((5, 1, 4)));
        using var opt = Qwen35.Models.SafeTensors.SafeTensorsFile.Open(Path.Combine(last, "optimizer.safetensors"));
        var name = run.Trainable[0].Name;
        Assert.That(opt.Load(name + ".step").ToInt64(), Is.EqualTo(5));
        Assert.That(opt.Load(name + ".exp_avg").shape, Is.EqualTo(run.Trainable[0].Param.shape));
    }

    [Test]
    public void NonFiniteStepsAreSkippedThenTheRunStops()
    {
        // No eval before the 5th skipped step (a NaN eval loss would stop the run first; see the test above).
        var run = Make(TestPaths.TempDir("nan"), 10, evalEvery: 0);
        var poisoned = run.Trainable[0].Param;
        using (no_grad()) poisoned[0, 0] = tensor(float.NaN);
        var other = run.Trainable[1].Param.clone();
        var e = Assert.Throws<TrainingDivergedException>(() => run.Loop.Run());
        Assert.That(e!.Message, Does.Contain("5 optimizer steps"));
        Assert.That(run.Trainable[1].Param.allclose(other), Is.True, "skipped steps do not update any parameter");
    }

    [Test]
    public void LiveTensorCountStaysFlatOver200Steps()
    {
        var (model, trainable) = TinySetup.Model();
        var g = new Generator(2);
        var data = Enumerable.Range(0, 4).Select(_ => TinySetup.Batch(g, [8, 6], [4, 3])).ToList();
        var optimizer = torch.optim.AdamW(trainable.Select(p => p.Param), lr: 1e-3);
        long? after10 = null;
        var options = new TrainLoopOptions
        {
            TotalSteps = 200, GradAccum = 2, Schedule = new LrSchedule(1e-3, 0, 200, LrSchedulerKind.Constant),
            OutputDir = TestPaths.TempDir("mem"), LogEvery = 50,
        };
        var loop = new TrainLoop(model, trainable, optimizer, new TinySetup.ListSource(data, 1), [], [], options, Quiet, _ => { })
        {
            OnStep = r =>
            {
                if (r.Step == 10) after10 = Tensor.TotalCount;
            },
        };
        loop.Run();
        var after200 = Tensor.TotalCount;
        Assert.That(after10, Is.Not.Null);
        Assert.That(after200 - after10!.Value, Is.LessThanOrEqualTo(4), $"live tensors after step 10: {after10}, after 200: {after200}");
    }
}
