using Qwen35.Lora;
using Qwen35.Models;
using Qwen35.Models.Config;
using Qwen35.Training.Bench;
using Qwen35.Training.Loop;
using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Training.Tests;

/// <summary>`trainer bench`: the --profile phase timer only observes (same loss and gradients as without it) and
/// charges every layer of the model to its type, once per pass; --documents packs several documents per row.</summary>
public class BenchTests
{
    [TestCase(false)]
    [TestCase(true)]
    public void TimingPhasesDoesNotChangeLossOrGradients(bool checkpointing)
    {
        using var scope = NewDisposeScope();
        var (model, trainable) = TinySetup.Model();
        using var m = model;
        model.train();
        var batch = TinySetup.Batch(new Generator(3), [40, 33], [30, 20]);

        var plain = LossComputation.ForwardBackward(model, batch.ToTensors(CPU), 1.0 / batch.TargetCount, checkpointing, 7);
        var plainGrads = TinySetup.Grads(trainable);
        foreach (var (_, p) in trainable) p.grad = null;

        var timer = new PhaseTimer(CPU);
        using var timedSum = LossComputation.ForwardBackwardOnDevice(model, batch.ToTensors(CPU), 1.0 / batch.TargetCount, checkpointing, 7, observer: timer);
        Assert.That(timedSum.ToDouble(), Is.EqualTo(plain));
        foreach (var (a, b) in plainGrads.Zip(TinySetup.Grads(trainable)))
            Assert.That(a.equal(b).all().item<bool>(), Is.True, "bitwise the same gradients");

        var phases = timer.Totals.ToDictionary(t => t.Phase, t => t.Calls);
        if (checkpointing)
        {
            // Tiny(): layers 0-2 linear_attention, layer 3 full_attention; each runs forward, recompute and backward once.
            foreach (var pass in new[] { "forward", "recompute", "backward" })
            {
                Assert.That(phases[$"{pass}, linear_attention"], Is.EqualTo(3), pass);
                Assert.That(phases[$"{pass}, full_attention"], Is.EqualTo(1), pass);
            }
            Assert.That(phases, Does.ContainKey("loss (norm, lm_head, CE) forward + backward"));
        }
        else
            Assert.That(phases.Keys, Is.EquivalentTo(new[] { "forward, all layers", "loss (norm, lm_head, CE) + backward, all layers" }));
        Assert.That(timer.Totals.All(t => t.Seconds >= 0), Is.True);
    }

    [Test]
    public void BenchProfileCoversTheWholeStep()
    {
        var report = Benchmark.Run(new BenchOptions
        {
            // bf16 base with the LoRA matmuls in bf16 (lora.compute_dtype: model): the GPU configuration, on the CPU.
            Config = Qwen35TextConfig.Tiny(), ShapeName = "tiny", Sequence = 32, Steps = 1, Checkpointing = true, Precision = Precision.Bf16,
            Lora = BenchOptions.DefaultLora(4) with { ComputeDtype = LoraComputeDtype.Model }, ProfileSteps = 2,
        }, Serilog.Core.Logger.None);
        var profile = report.Profile!;
        Assert.That(profile.Sum(p => p.Share), Is.EqualTo(1.0).Within(1e-9));
        Assert.That(profile.Select(p => p.Phase), Is.SupersetOf(new[]
        {
            "forward, linear_attention", "recompute, full_attention", "backward, linear_attention",
            "clip (global norm)", "read loss + norm", "AdamW step + zero grads",
        }));
        Assert.That(profile.Single(p => p.Phase == "backward, linear_attention").CallsPerStep, Is.EqualTo(3));
        Assert.That(report.StepSeconds, Has.Count.EqualTo(1), "profiled steps are not timed steps");
    }

    [Test]
    public void DocumentsPerRowTrainOnlyWithinDocuments()
    {
        var options = new BenchOptions
        {
            Config = Qwen35TextConfig.Tiny(), ShapeName = "tiny", Sequence = 32, Batch = 2, Steps = 1, Documents = 3,
            Lora = BenchOptions.DefaultLora(4),
        };
        var report = Benchmark.Run(options, Serilog.Core.Logger.None);
        // Documents of 10, 10 and 12 tokens: no target crosses a boundary, so each row trains 32 − 3 positions.
        Assert.That(report.TrainedTokens, Is.EqualTo(2 * (32 - 3)));
        Assert.That(report.Flops.Sequence, Is.EqualTo(10), "attention FLOPs follow the document length");
        var single = Benchmark.Run(options with { Documents = 1 }, Serilog.Core.Logger.None);
        Assert.That(single.TrainedTokens, Is.EqualTo(2 * 31));
    }
}
