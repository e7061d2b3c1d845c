using System.Text.Json.Nodes;
using Qwen35.Lora;
using Qwen35.Models;
using Qwen35.Models.SafeTensors;
using Qwen35.Tests;
using Qwen35.Training.Loop;
using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Training.Tests;

/// <summary>
/// The training loss path against Hugging Face: golden model + golden PEFT adapter, sequence 0 of the golden inputs
/// with every token trained. Our chunked loss (shift once, select, chunk) with gradient scale 1/(T-1) must give HF's
/// mean loss and HF's gradient of that loss for every adapter tensor (tests/fixtures/qwen35-tiny-a).
/// </summary>
public class GoldenLoraGradientTests
{
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
        var expected = JsonNode.Parse(File.ReadAllText(Path.Combine(golden, "expected.json")))!;
        var ids = JsonNode.Parse(File.ReadAllText(Path.Combine(golden, "inputs.json")))!["sequences"]![0]!.AsArray()
            .Select(n => n!.GetValue<long>()).ToArray();
        var batch = new MicroBatch { Rows = 1, Length = ids.Length, InputIds = ids, Labels = ids };
        Assert.That(batch.TargetCount, Is.EqualTo(ids.Length - 1));

        var sum = LossComputation.ForwardBackward(model, batch.ToTensors(CPU), 1.0 / batch.TargetCount, checkpointing, 0, chunkRows);
        Assert.That(sum / batch.TargetCount, Is.EqualTo(expected["lora"]!["loss"]!.GetValue<double>()).Within(1e-5));

        using var grads = SafeTensorsFile.Open(Path.Combine(golden, "expected_lora_grads.safetensors"));
        var trainable = Session.Trainable(model).ToDictionary(p => p.Name, p => p.Param);
        Assert.That(trainable.Count, Is.EqualTo(grads.Tensors.Count));
        foreach (var key in grads.Tensors.Keys)
        {
            var name = key["base_model.model.".Length..];             // PEFT key -> model parameter name
            var reference = grads.Load(key);
            var ours = trainable[name].grad!;
            Assert.That(ours.allclose(reference, rtol: 1e-3, atol: 1e-5), Is.True,
                $"{name}: max diff {(ours - reference).abs().max().ToDouble():E2}");
        }
    }
}
