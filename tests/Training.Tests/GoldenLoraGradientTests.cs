using Qwen35.Lora;
using Qwen35.Models;
using Qwen35.Tests;
using Qwen35.Training.Loop;
using Qwen35.Training.Verification;
using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Training.Tests;

/// <summary>
/// The training loss path against Hugging Face: golden model + golden PEFT adapter, sequence 0 of the golden inputs
/// with every token trained. Our chunked loss (shift once, select, chunk) with gradient scale 1/(T-1) must give HF's
/// mean loss and HF's gradient of that loss for every adapter tensor (tests/fixtures/qwen35-tiny-a), within the exact
/// bounds of <see cref="GoldenBounds"/> that `trainer verify` judges by too.
/// </summary>
public class GoldenLoraGradientTests
{
    static readonly Lazy<GoldenReference> Reference = new(() => GoldenReference.Open(TestPaths.GoldenTiny));

    [TestCase(false, 1024)]
    [TestCase(true, 1024)]
    [TestCase(false, 7)]
    public void LossAndAdapterGradientsMatchHuggingFace(bool checkpointing, int chunkRows)
    {
        using var scope = NewDisposeScope();
        var golden = TestPaths.GoldenTiny;
        var (model, _) = Qwen35ForCausalLM.FromPretrained(golden, ScalarType.Float32, CPU);
        using var m = model;
        LoraInjector.LoadAdapter(model, Path.Combine(golden, "adapter"));
        model.train();
        var reference = Reference.Value;
        var ids = reference.Sequences[reference.LoraSequence];
        var batch = new MicroBatch { Rows = 1, Length = ids.Length, InputIds = ids, Labels = ids };
        Assert.That(batch.TargetCount, Is.EqualTo(ids.Length - 1));

        var sum = LossComputation.ForwardBackward(model, batch.ToTensors(CPU), 1.0 / batch.TargetCount, checkpointing, 0, chunkRows);
        Assert.That(Comparison.LossGap(sum / batch.TargetCount, reference.LoraLoss), Is.LessThanOrEqualTo(GoldenBounds.Exact.Loss));

        var trainable = Session.Trainable(model).ToDictionary(p => p.Name, p => p.Param);
        Assert.That(trainable.Count, Is.EqualTo(reference.GradientKeys.Count()));
        foreach (var key in reference.GradientKeys)
        {
            var name = key["base_model.model.".Length..];             // PEFT key -> model parameter name
            var excess = Comparison.AllcloseExcess(trainable[name].grad!, reference.Gradient(key), GoldenBounds.Exact.Gradients);
            Assert.That(excess, Is.LessThanOrEqualTo(Tolerance.ExcessBound), $"{name}: {GoldenBounds.Exact.Gradients.Measure}");
        }
    }
}
