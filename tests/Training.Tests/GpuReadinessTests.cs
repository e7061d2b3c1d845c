using Qwen35.Lora;
using Qwen35.Models;
using Qwen35.Models.Config;
using Qwen35StepModel = Qwen35.Models.Generation.Qwen35StepModel;
using GenerationOptions = Qwen35.Models.Generation.GenerationOptions;
using TokenGenerator = Qwen35.Models.Generation.TokenGenerator;
using Generator = TorchSharp.torch.Generator;
using Qwen35.Training.Bench;
using Qwen35.Training.Loop;
using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Training.Tests;

/// <summary>
/// The GPU-minded changes of the training path (docs/gpu.md "GPU readiness"), checked on the CPU: the host-side
/// target index and per-document attention give the same loss and gradients as the device-side selection and the
/// block-diagonal mask; device-side clipping equals TorchSharp's clip_grad_norm_; and a bf16 base with fp32 LoRA runs
/// a training step, evaluation, generation and the benchmark without a dtype error.
/// </summary>
public class GpuReadinessTests
{
    /// <summary>Two packed rows of 24: row 0 holds documents of 10 and 14 tokens, row 1 documents of 5, 5 and 9
    /// tokens followed by 5 padding tokens (right padding).</summary>
    static MicroBatch PackedBatch(Generator g)
    {
        var mb = TinySetup.Batch(g, [24, 24], [20, 12]);
        var labels = mb.Labels.Select((l, i) => i >= 24 + 19 ? -100 : l).ToArray();
        return mb with { Labels = labels, Documents = new PackedDocuments([[0, 10], [0, 5, 10]], [24, 19]) };
    }

    [TestCase(false), TestCase(true)]
    public void PerDocumentAttentionGivesTheMaskedLossAndGradients(bool checkpointing)
    {
        using var scope = NewDisposeScope();
        var (model, trainable) = TinySetup.Model();
        var mb = PackedBatch(new Generator(11));
        var split = mb.ToTensors(CPU);
        var sumSplit = LossComputation.ForwardBackward(model, split, 0.1, checkpointing, 0);
        var gradsSplit = TinySetup.Grads(trainable);
        foreach (var (_, p) in trainable) p.grad?.zero_();
        // The [T,T] block-diagonal mask path (what rows of more than 64 documents take).
        var masked = split with { Inputs = split.Inputs with { Documents = mb.Documents! with { PerDocumentAttention = false } } };
        var sumMasked = LossComputation.ForwardBackward(model, masked, 0.1, checkpointing, 0);
        var gradsMasked = TinySetup.Grads(trainable);

        Assert.That(sumSplit, Is.EqualTo(sumMasked).Within(1e-6 * Math.Abs(sumMasked)));
        Assert.That(gradsMasked.Sum(t => t.abs().sum().ToDouble()), Is.GreaterThan(0));
        for (var i = 0; i < gradsMasked.Count; i++)
            Assert.That(gradsSplit[i].allclose(gradsMasked[i], rtol: 1e-5, atol: 1e-7), Is.True, trainable[i].Name);
    }

    [Test]
    public void HostTargetIndexSelectsWhatNonzeroSelects()
    {
        using var scope = NewDisposeScope();
        var mb = PackedBatch(new Generator(13)) with { TokenWeights = Enumerable.Range(0, 48).Select(i => 0.5f + i % 3).ToArray() };
        // Labels as the packer writes them (-100 at every document start), so that nonzero over the labels alone
        // finds the trained targets; the host index must agree, with or without that masking.
        var packerLabels = mb.Labels.ToArray();
        packerLabels[10] = packerLabels[24 + 5] = packerLabels[24 + 10] = -100;
        var t = mb.ToTensors(CPU);
        var hidden = randn(2, 24, 8);
        using var labels = tensor(packerLabels, [2, 24]);
        using var device = ChunkedCrossEntropy.Select(hidden, labels, ChunkedCrossEntropyTests.LabelledPositions(labels), t.TokenWeights, t.CategoryIds);
        using var host = ChunkedCrossEntropy.Select(hidden, t.Labels, t.TargetIndex, t.TokenWeights, t.CategoryIds);
        Assert.That(mb.TargetCount, Is.EqualTo((mb with { Labels = packerLabels }).TargetCount));
        Assert.That(host.Count, Is.EqualTo(mb.TargetCount).And.EqualTo(device.Count));
        Assert.That(host.Targets.data<long>().ToArray(), Is.EqualTo(device.Targets.data<long>().ToArray()));
        Assert.That(host.Groups!.data<long>().ToArray(), Is.EqualTo(device.Groups!.data<long>().ToArray()));
        Assert.That(host.Weights!.data<float>().ToArray(), Is.EqualTo(device.Weights!.data<float>().ToArray()));
        Assert.That(host.Hidden.allclose(device.Hidden, 0, 0), Is.True);
    }

    [TestCase(0.05), TestCase(1e6)]
    public void DeviceClippingEqualsClipGradNorm(double maxNorm)
    {
        using var scope = NewDisposeScope();
        var gen = new Generator(14);
        var a = new[] { randn(4, 6, generator: gen), randn(7, generator: gen), randn(3, 3, generator: gen) }
            .Select(t => new TorchSharp.Modules.Parameter(t.clone(), requires_grad: true)).ToList();
        var b = a.Select(p => new TorchSharp.Modules.Parameter(p.detach().clone(), requires_grad: true)).ToList();
        for (var i = 0; i < a.Count; i++)
        {
            var grad = randn(a[i].shape, generator: gen) * 0.1;
            a[i].grad = grad.clone();
            b[i].grad = grad.clone();
        }
        var expected = nn.utils.clip_grad_norm_(a, maxNorm);
        var actual = GradientClipping.ClipOnDevice(b, maxNorm)!.ToDouble();
        Assert.That(actual, Is.EqualTo(expected).Within(1e-6 * expected));
        for (var i = 0; i < a.Count; i++)
            Assert.That(b[i].grad!.allclose(a[i].grad!, rtol: 1e-6, atol: 0), Is.True, $"grad {i}");
        var clipped = a.Sum(p => p.grad!.square().sum().ToDouble());
        Assert.That(Math.Sqrt(clipped), Is.EqualTo(Math.Min(expected, maxNorm)).Within(1e-3 * Math.Min(expected, maxNorm)));
    }

    /// <summary>bf16 frozen base, fp32 LoRA on every projection (so the fp32 branches meet bf16 activations in the
    /// GDN input projections, attention and MLP): a packed training step through the loop's on-device path, clipping
    /// and AdamW; evaluation; greedy generation with a cache; and one benchmark step. No dtype error, finite values.</summary>
    [Test]
    public void Bf16BaseWithFp32LoraRunsTrainEvalGenerateAndBench()
    {
        using var scope = NewDisposeScope();
        using var model = Qwen35ForCausalLM.CreateRandom(Qwen35TextConfig.Tiny(), 5, ScalarType.BFloat16);
        LoraInjector.Apply(model, new LoraOptions { Rank = 4, Alpha = 8, Dropout = 0.1, TargetModules = LoraTargets.AllLinear }, 5);
        model.train();
        var trainable = Session.Trainable(model);
        var parameters = trainable.Select(p => p.Param).ToList();
        using var optimizer = torch.optim.AdamW(parameters, lr: 1e-2);
        var mb = PackedBatch(new Generator(15));
        var before = parameters.Select(p => p.detach().clone()).ToList();
        for (var step = 0; step < 2; step++)   // step 1 moves lora_B off zero, so step 2 trains lora_A too
        {
            var sum = LossComputation.ForwardBackwardOnDevice(model, mb.ToTensors(CPU), 1.0 / mb.TargetCount, step == 1, step);
            var norm = GradientClipping.ClipOnDevice(parameters, 1.0)!;
            Assert.That(sum.dtype, Is.EqualTo(ScalarType.Float64));
            Assert.That(double.IsFinite(sum.ToDouble()) && norm.ToDouble() > 0, $"step {step}: loss {sum.ToDouble()}, norm {norm.ToDouble()}");
            optimizer.step();
            foreach (var p in parameters) p.grad?.zero_();
        }
        Assert.That(parameters.All(p => p.dtype == ScalarType.Float32));
        Assert.That(parameters.Zip(before).All(x => !x.First.allclose(x.Second)), Is.True, "every LoRA matrix moved");

        var eval = TrainLoop.Evaluate(model, [mb], ["a"]);
        Assert.That(double.IsFinite(eval.Loss) && eval.Tokens == mb.TargetCount, $"eval loss {eval.Loss}, tokens {eval.Tokens}");

        model.eval();
        using (no_grad())
        using (var step = new Qwen35StepModel(model))
        {
            var result = new TokenGenerator(step).Generate([[1, 2, 3, 4], [5, 6]], new GenerationOptions { MaxNewTokens = 4 });
            Assert.That(result.NewTokens.Select(t => t.Length), Is.EqualTo(new[] { 4, 4 }));
        }

        var report = Benchmark.Run(new BenchOptions
        {
            Config = Qwen35TextConfig.Tiny(), ShapeName = "tiny", Sequence = 16, Steps = 1, Precision = Precision.Bf16,
            Lora = BenchOptions.DefaultLora(4),
        }, Serilog.Core.Logger.None);
        Assert.That(report.StepSeconds, Has.Count.EqualTo(1));
        Assert.That(report.TokensPerSecond, Is.GreaterThan(0));
    }
}
