using System.CommandLine;
using System.Text.Json.Nodes;
using Qwen35.Cli.Commands;
using Qwen35.Models;
using Qwen35.Tests;
using static TorchSharp.torch;

namespace Qwen35.Cli.Tests;

public class LoraCliTests
{
    static string Golden => TestPaths.GoldenTiny;
    static string GoldenAdapter => Path.Combine(Golden, "adapter");

    static (int Code, string Out, string Err) Run(params string[] args)
    {
        var root = new RootCommand { InspectCommand.Build(), LoraCommands.Build() };
        var (oldOut, oldErr) = (Console.Out, Console.Error);
        using var o = new StringWriter();
        using var e = new StringWriter();
        Console.SetOut(o);
        Console.SetError(e);
        try { return (root.Parse(args).Invoke(), o.ToString(), e.ToString()); }
        finally { Console.SetOut(oldOut); Console.SetError(oldErr); }
    }

    [Test]
    public void Merge_ThenScoring_GivesTheGoldenLoraLoss()
    {
        var outDir = TestPaths.TempDir("cli-merge");
        var (code, stdout, stderr) = Run("merge", "--model", Golden, "--adapter", GoldenAdapter, "--out", outDir);
        Assert.That(code, Is.EqualTo(0), stderr);
        Assert.That(stdout, Does.Contain("merged 11 adapters"));

        var goldenLoss = JsonNode.Parse(File.ReadAllText(Path.Combine(Golden, "expected.json")))!["lora"]!["loss"]!.GetValue<double>();
        var ids = JsonNode.Parse(File.ReadAllText(Path.Combine(Golden, "inputs.json")))!["sequences"]![0]!.AsArray().Select(n => n!.GetValue<long>()).ToArray();
        var (model, _) = Qwen35ForCausalLM.FromPretrained(outDir, ScalarType.Float32, CPU);
        using (model)
        using (var input = tensor(ids, dtype: ScalarType.Int64).unsqueeze(0))
        {
            model.eval();
            Assert.That(model.SequenceLosses(input)[0], Is.EqualTo(goldenLoss).Within(1e-5));
        }
    }

    [Test]
    public void InspectAdapter_WithModel_ReportsTargetsRanksWarningsAndFit()
    {
        var (code, stdout, stderr) = Run("inspect", "--model", Golden, "--adapter", GoldenAdapter);
        Assert.That(code, Is.EqualTo(0), stderr);
        Assert.That(stdout, Does.Contain("r 4, lora_alpha 8"));
        Assert.That(stdout, Does.Contain("LoRA: 11 modules"));
        Assert.That(stdout, Does.Contain("scaling 2"));
        Assert.That(stdout, Does.Contain("full_attention").And.Contain("linear_attention"));
        Assert.That(stdout, Does.Contain("21125"), "out_proj is targeted: llama.cpp warning expected");
        Assert.That(stdout, Does.Contain("fits the model: yes"));
    }

    [Test]
    public void Inspect_WithoutArguments_IsAUsageError() => Assert.That(Run("inspect").Code, Is.EqualTo(1));

    [Test]
    public void Merge_BadAdapter_IsBadInputNamingTheField()
    {
        var bad = TestPaths.TempDir("cli-bad-adapter");
        File.Copy(Path.Combine(GoldenAdapter, "adapter_model.safetensors"), Path.Combine(bad, "adapter_model.safetensors"));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(GoldenAdapter, "adapter_config.json")))!.AsObject();
        config["use_dora"] = true;
        File.WriteAllText(Path.Combine(bad, "adapter_config.json"), config.ToJsonString());

        var (code, _, stderr) = Run("merge", "--model", Golden, "--adapter", bad, "--out", TestPaths.TempDir("cli-merge-bad"));

        Assert.That(code, Is.EqualTo(2));
        Assert.That(stderr, Does.Contain("use_dora").And.Contain("adapter_config.json"));
    }
}
