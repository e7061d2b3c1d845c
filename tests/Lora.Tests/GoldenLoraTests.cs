using System.Text.Json.Nodes;
using Qwen35.Models;
using Qwen35.Models.SafeTensors;
using Qwen35.Tests;
using static TorchSharp.torch;

namespace Qwen35.Lora.Tests;

/// <summary>
/// Parity with PEFT on the golden tiny model (tests/fixtures/qwen35-tiny-a, produced by HF transformers + PEFT in
/// fp32): the golden adapter must give the golden LoRA logits, loss and gradients of sequence 0.
/// </summary>
public class GoldenLoraTests
{
    static string Golden => TestPaths.GoldenTiny;
    static string GoldenAdapter => Path.Combine(Golden, "adapter");

    static Qwen35ForCausalLM LoadBase()
    {
        var (model, _) = Qwen35ForCausalLM.FromPretrained(Golden, ScalarType.Float32, CPU);
        model.eval();
        return model;
    }

    static Tensor Sequence0()
    {
        var ids = JsonNode.Parse(File.ReadAllText(Path.Combine(Golden, "inputs.json")))!["sequences"]![0]!.AsArray()
            .Select(n => n!.GetValue<long>()).ToArray();
        return tensor(ids, dtype: ScalarType.Int64).unsqueeze(0);
    }

    static Tensor Expected(string file, string name)
    {
        using var f = SafeTensorsFile.Open(Path.Combine(Golden, file));
        return f.Load(name).clone();
    }

    static double GoldenLoraLoss => JsonNode.Parse(File.ReadAllText(Path.Combine(Golden, "expected.json")))!["lora"]!["loss"]!.GetValue<double>();

    static Tensor Logits(Qwen35ForCausalLM model, Tensor ids) => model.Logits(model.Forward(new ModelInputs(ids)))[0];

    // HF ForCausalLMLoss with labels = input ids: mean CE of logits[t] against ids[t+1].
    static Tensor MeanNextTokenLoss(Tensor logits, Tensor ids)
    {
        var t = ids.shape[1];
        return nn.functional.cross_entropy(logits.narrow(0, 0, t - 1).to(ScalarType.Float32), ids[0].narrow(0, 1, t - 1));
    }

    static double MaxDiff(Tensor a, Tensor b) => (a - b).abs().max().item<float>();

    [Test]
    public void GoldenAdapter_GivesTheGoldenLoraLogitsAndLoss()
    {
        using var scope = NewDisposeScope();
        using var model = LoadBase();
        var loaded = LoraInjector.LoadAdapter(model, GoldenAdapter);
        Assert.That(loaded.Report.Modules, Has.Count.EqualTo(11));
        var ids = Sequence0();

        using var noGrad = no_grad();
        var logits = Logits(model, ids);

        Assert.That(MaxDiff(logits, Expected("expected.safetensors", "lora.seq0.logits")), Is.LessThanOrEqualTo(1e-4));
        Assert.That(MeanNextTokenLoss(logits, ids).item<float>(), Is.EqualTo(GoldenLoraLoss).Within(1e-5));
        Assert.That(model.SequenceLosses(ids)[0], Is.EqualTo(GoldenLoraLoss).Within(1e-5));
    }

    [Test]
    public void GoldenAdapter_GivesTheGoldenLoraGradients()
    {
        using var scope = NewDisposeScope();
        using var model = LoadBase();
        LoraInjector.LoadAdapter(model, GoldenAdapter);
        var ids = Sequence0();

        MeanNextTokenLoss(Logits(model, ids), ids).backward();

        using var grads = SafeTensorsFile.Open(Path.Combine(Golden, "expected_lora_grads.safetensors"));
        var adapters = LoraInjector.Adapters(model);
        Assert.That(grads.Tensors.Count, Is.EqualTo(2 * adapters.Count));
        foreach (var a in adapters)
        {
            var keyA = AdapterKeys.ToKey(a.ModuleName, LoraMatrix.A);
            var keyB = AdapterKeys.ToKey(a.ModuleName, LoraMatrix.B);
            Assert.That(MaxDiff(a.LoraA.weight.grad!, grads.Load(keyA)), Is.LessThanOrEqualTo(1e-5), keyA);
            Assert.That(MaxDiff(a.LoraB.weight.grad!, grads.Load(keyB)), Is.LessThanOrEqualTo(1e-5), keyB);
        }
        Assert.That(model.named_parameters().Where(p => !p.name.Contains(".lora_")).All(p => p.parameter.grad is null), Is.True,
            "only LoRA parameters get gradients");
    }

    [Test]
    public void FreshAdapter_ZeroB_EqualsTheBaseModel()
    {
        using var scope = NewDisposeScope();
        using var model = LoadBase();
        var ids = Sequence0();
        using var noGrad = no_grad();
        var baseLogits = Logits(model, ids);

        LoraInjector.Apply(model, new LoraOptions { Rank = 8, Alpha = 16, TargetModules = LoraTargets.AllLinear }, seed: 1);

        Assert.That(LoraInjector.Adapters(model), Has.Count.EqualTo(3 * 8 + 7));
        Assert.That(Logits(model, ids).equal(baseLogits).all().item<bool>(), Is.True);
        Assert.That(MaxDiff(baseLogits, Expected("expected.safetensors", "seq0.logits")), Is.LessThanOrEqualTo(1e-4));
    }

    [Test]
    public void Merged_EqualsUnmerged_AndMergedExportReloadsToTheLoraLogits()
    {
        using var scope = NewDisposeScope();
        using var model = LoadBase();
        LoraInjector.LoadAdapter(model, GoldenAdapter);
        var ids = Sequence0();
        using var noGrad = no_grad();
        var golden = Expected("expected.safetensors", "lora.seq0.logits");

        LoraMerge.Merge(model);
        Assert.That(MaxDiff(Logits(model, ids), golden), Is.LessThanOrEqualTo(1e-4), "merged");
        LoraMerge.Unmerge(model);
        Assert.That(MaxDiff(Logits(model, ids), golden), Is.LessThanOrEqualTo(1e-4), "unmerged again");

        var outDir = TestPaths.TempDir("lora-golden-merged");
        MergedModelExport.Export(model, Golden, outDir);
        using (var source = SafeTensorsCheckpoint.Open(Golden))
        using (var merged = SafeTensorsCheckpoint.Open(outDir))
        {
            Assert.That(merged.Names, Is.EquivalentTo(source.Names), "original key layout incl. model.visual.* and mtp.*");
            Assert.That(merged.Load("mtp.fc.weight").equal(source.Load("mtp.fc.weight")).all().item<bool>(), Is.True);
        }
        var (reloaded, report) = Qwen35ForCausalLM.FromPretrained(outDir, ScalarType.Float32, CPU);
        using (reloaded)
        {
            reloaded.eval();
            Assert.That(report.Layout, Is.EqualTo("wrapper"));
            Assert.That(MaxDiff(Logits(reloaded, ids), golden), Is.LessThanOrEqualTo(1e-4), "reloaded merged checkpoint");
        }
    }
}
