using System.Text.Json;
using Qwen35.Cli.Commands;
using Qwen35.Data;
using Qwen35.Lora;
using Qwen35.Models;
using Qwen35.Tests;
using Qwen35.Training;
using Qwen35.Training.Dpo;
using Serilog;
using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Cli.Tests.Dpo;

public class EvalDpoCliTests
{
    static readonly string Pairs = Path.Combine(TestPaths.RepoRoot, "data", "sample", "ja_preference_sample.jsonl");
    static readonly string[] Keys = ["loss", "rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen", "logps/rejected"];

    static (int Code, string Out, string Err) Invoke(params string[] args) => CliRunner.Run([EvalCommand.Build()], args);

    /// <summary>A rank-4 adapter on builtin:tiny with random B (so the policy differs from the base model).</summary>
    static string Adapter()
    {
        var dir = Path.Combine(TestPaths.TempDir("dpo-eval-adapter"), "adapter");
        using var model = Qwen35ForCausalLM.CreateRandom(Session.BuiltinTinyConfig(), 42);
        var options = new LoraOptions { Rank = 4, Alpha = 8 };
        LoraInjector.Apply(model, options, 7);
        using var g = new Generator(9);
        using (no_grad())
            foreach (var a in LoraInjector.Adapters(model))
                a.LoraB.weight.copy_(randn(a.LoraB.weight.shape, generator: g).mul(0.05));
        PeftAdapter.Save(dir, model, options, Session.BuiltinTiny);
        return dir;
    }

    [Test]
    public void EvalObjectiveDpoPrintsTrlsKeysEqualToTheLibrarysValues()
    {
        var adapter = Adapter();
        var (code, stdout, stderr) = Invoke("eval", "--model", "builtin:tiny", "--adapter", adapter, "--data", Pairs, "--objective", "dpo",
            "--beta", "0.2", "--max-length", "1024", "--json");
        Assert.That(code, Is.EqualTo(CliErrors.Ok), stderr);
        var root = JsonDocument.Parse(stdout).RootElement;

        var session = new SessionOptions { Model = Session.BuiltinTiny, Adapter = adapter };
        var report = Evaluation.RunDpo(session, new DataOptions { Train = [Pairs], MaxLength = 1024 }, new DpoOptions { Beta = 0.2 }, 4,
            new LoggerConfiguration().CreateLogger());
        var expected = report.Result.Metrics!.Append(new("loss", report.Result.Loss)).ToDictionary();
        foreach (var key in Keys)
            Assert.That(root.GetProperty(key).GetDouble(), Is.EqualTo(expected[key]), key);
        Assert.That(root.GetProperty("pairs").GetInt32(), Is.EqualTo(64));
        Assert.That(expected["loss"], Is.Not.EqualTo(Math.Log(2)).Within(1e-3), "the adapter moved the policy away from the base reference");

        var byCategory = root.GetProperty("by_category");
        Assert.That(byCategory.EnumerateObject().Select(p => p.Name),
            Is.EquivalentTo(new[] { "anti_hallucination", "mid_refusal", "overrefusal_prevention", "safety_refusal" }));
        foreach (var category in byCategory.EnumerateObject())
            foreach (var key in Keys)
                Assert.That(category.Value.GetProperty(key).GetDouble(), Is.EqualTo(report.Result.MetricsByCategory![category.Name][key]), $"{category.Name} {key}");
        // The overall means are the pair-weighted means of the categories (16 pairs each).
        Assert.That(byCategory.EnumerateObject().Average(c => c.Value.GetProperty("loss").GetDouble()), Is.EqualTo(expected["loss"]).Within(1e-12));
    }

    [Test]
    public void TheSameAdapterAsReferenceGivesLog2AndZeroRewards()
    {
        var adapter = Adapter();
        var (code, stdout, stderr) = Invoke("eval", "--model", "builtin:tiny", "--adapter", adapter, "--reference-adapter", adapter,
            "--data", Pairs, "--objective", "dpo", "--max-length", "1024", "--json");
        Assert.That(code, Is.EqualTo(CliErrors.Ok), stderr);
        var root = JsonDocument.Parse(stdout).RootElement;
        Assert.That(root.GetProperty("loss").GetDouble(), Is.EqualTo(Math.Log(2)).Within(1e-9));
        Assert.That(root.GetProperty("rewards/chosen").GetDouble(), Is.EqualTo(0).Within(1e-9));
        Assert.That(root.GetProperty("rewards/margins").GetDouble(), Is.EqualTo(0).Within(1e-9));
    }

    [Test]
    public void AReferenceAdapterWithoutObjectiveDpoIsBadInput()
    {
        var (code, _, stderr) = Invoke("eval", "--model", "builtin:tiny", "--data", Pairs, "--reference-adapter", "x");
        Assert.That(code, Is.EqualTo(CliErrors.BadInput));
        Assert.That(stderr.Trim(), Is.EqualTo("eval: error: --reference-adapter: applies to --objective dpo only"));
    }
}
