using Qwen35.Lora;
using Qwen35.Models;
using Qwen35.Models.Config;
using Qwen35.Training.Loop;
using Qwen35.Training.Verification;
using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Training.Tests;

public class EvaluateAndPrecisionTests
{
    [Test]
    public void EvalLossPerCategoryEqualsCrossEntropyOfThatCategorysTokens()
    {
        using var scope = NewDisposeScope();
        var (model, _) = TinySetup.Model();
        var g = new Generator(9);
        // Row 0 is category 0 ("a"), row 1 category 1 ("b"); row 1 is padded.
        var batch = TinySetup.Batch(g, [14, 9], [10, 5], [0, 1]);
        var result = TrainLoop.Evaluate(model, [batch], ["a", "b"]);

        double RowLoss(int row, int length)
        {
            using var noGrad = no_grad();
            var ids = tensor(batch.InputIds.Skip(row * batch.Length).Take(length).ToArray()).unsqueeze(0);
            var labels = batch.Labels.Skip(row * batch.Length).Take(length).ToArray();
            var logits = model.Logits(model.Forward(new ModelInputs(ids)))[0];
            var targets = tensor(labels.Skip(1).ToArray());
            return nn.functional.cross_entropy(logits[..^1], targets, ignore_index: -100).ToDouble();
        }
        var a = RowLoss(0, 14);
        var b = RowLoss(1, 9);
        Assert.That(result.ByCategory["a"], Is.EqualTo(a).Within(GoldenBounds.Exact.Loss));
        Assert.That(result.ByCategory["b"], Is.EqualTo(b).Within(GoldenBounds.Exact.Loss));
        Assert.That(result.Tokens, Is.EqualTo(10 + 5));
        Assert.That(result.Loss, Is.EqualTo((10 * a + 5 * b) / 15).Within(GoldenBounds.Exact.Loss), "overall = token-weighted mean");
    }

    [TestCase(false)]
    [TestCase(true)]
    public void Bf16BaseWithFp32LoraTrainsOnCpu(bool checkpointing)
    {
        using var scope = NewDisposeScope();
        using var model = Qwen35ForCausalLM.CreateRandom(Qwen35TextConfig.Tiny(), 3, ScalarType.BFloat16);
        LoraInjector.Apply(model, new LoraOptions { Rank = 4, Alpha = 8, TargetModules = LoraTargets.Names("q_proj", "in_proj_qkv", "down_proj") }, 3);
        var trainable = Session.Trainable(model);
        Assert.That(trainable.All(p => p.Param.dtype == ScalarType.Float32), "adapters stay fp32");
        var batch = TinySetup.Batch(new Generator(4), [16, 12], [8, 8]);
        // lora_B starts at zero, so only lora_B gets a gradient in the first step; that is enough to see the flow.
        var sum = LossComputation.ForwardBackward(model, batch.ToTensors(CPU), 1.0 / batch.TargetCount, checkpointing, 0);
        Assert.That(double.IsFinite(sum) && sum > 0);
        var grads = trainable.Where(p => p.Name.Contains("lora_B")).Select(p => p.Param.grad!).ToList();
        Assert.That(grads.All(gr => gr.dtype == ScalarType.Float32));
        Assert.That(grads.Sum(gr => gr.abs().sum().ToDouble()), Is.GreaterThan(0));
    }
}
