using System.CommandLine;
using System.Text.Json.Nodes;
using Qwen35.Cli.Commands;
using Qwen35.Tests;

namespace Qwen35.Cli.Tests;

public class LoraCliTests
{
    static string Golden => TestPaths.GoldenTiny;
    static string GoldenAdapter => Path.Combine(Golden, "adapter");

    static (int Code, string Out, string Err) Run(params string[] args) =>
        CliRunner.Run([ScoreCommand.Build(), InspectCommand.Build(), LoraCommands.Build()], args);

    [Test]
    public void Merge_ThenScoring_GivesTheGoldenLoraLoss()
    {
        var outDir = TestPaths.TempDir("cli-merge");
        var (code, stdout, stderr) = Run("merge", "--model", Golden, "--adapter", GoldenAdapter, "--out", outDir);
        Assert.That(code, Is.EqualTo(0), stderr);
        Assert.That(stdout, Does.Contain("merged 11 adapters"));

        var goldenLoss = JsonNode.Parse(File.ReadAllText(Path.Combine(Golden, "expected.json")))!["lora"]!["loss"]!.GetValue<double>();
        // Score the merged checkpoint with the score verb (no adapter: it is in the weights now).
        var tokens = Path.Combine(TestPaths.TempDir("cli-merge-tokens"), "tokens.json");
        var seq0 = JsonNode.Parse(File.ReadAllText(Path.Combine(Golden, "inputs.json")))!["sequences"]![0]!.ToJsonString();
        File.WriteAllText(tokens, $"{{\"sequences\": [{seq0}]}}");
        var (scoreCode, scoreOut, scoreErr) = Run("score", "--model", outDir, "--tokens", tokens);
        Assert.That(scoreCode, Is.EqualTo(0), scoreErr);
        var loss = JsonNode.Parse(scoreOut)!["losses"]![0]!.GetValue<double>();
        Assert.That(loss, Is.EqualTo(goldenLoss).Within(1e-5));

        // The same loss from the base model with the adapter attached by score --adapter.
        var (code2, out2, err2) = Run("score", "--model", Golden, "--adapter", GoldenAdapter, "--tokens", tokens);
        Assert.That(code2, Is.EqualTo(0), err2);
        Assert.That(JsonNode.Parse(out2)!["losses"]![0]!.GetValue<double>(), Is.EqualTo(goldenLoss).Within(1e-5));
    }

    [Test]
    public void InspectAdapter_WithModel_ReportsTargetsRanksWarningsAndFit()
    {
        var (code, stdout, stderr) = Run("inspect", "--model", Golden, "--adapter", GoldenAdapter);
        Assert.That(code, Is.EqualTo(0), stderr);
        var root = JsonNode.Parse(stdout)!;
        Assert.That(root["model"]!["layer_pattern"]!.GetValue<string>(), Is.EqualTo("LLLF"), "the model section is still there");
        var a = root["adapter"]!;
        Assert.That(a["r"]!.GetValue<int>(), Is.EqualTo(4));
        Assert.That(a["lora_alpha"]!.GetValue<double>(), Is.EqualTo(8));
        Assert.That(a["modules"]!.GetValue<int>(), Is.EqualTo(11));
        Assert.That(a["scalings"]!.AsArray().Select(x => x!.GetValue<double>()), Is.EqualTo(new[] { 2.0 }));
        // 11 modules at r=4: sum of 4*(in+out) from the README's adapter table.
        Assert.That(a["parameters"]!["adapter"]!.GetValue<long>(), Is.EqualTo(7552));
        Assert.That(a["parameters"]!["by_layer_type"]!["full_attention"]!.GetValue<long>(), Is.EqualTo(3968));
        Assert.That(a["parameters"]!["by_layer_type"]!["linear_attention"]!.GetValue<long>(), Is.EqualTo(3584));
        Assert.That(a["parameters"]!["share_of_total"]!.GetValue<double>(), Is.GreaterThan(0).And.LessThan(1));
        Assert.That(a["portability_warnings"]!.AsArray().Select(x => x!.GetValue<string>()), Has.Some.Contains("21125"));
        Assert.That(a["fits_model"]!.GetValue<bool>(), Is.True);
    }

    [Test]
    public void InspectAdapter_Alone_HasOnlyTheAdapterSection()
    {
        var (code, stdout, stderr) = Run("inspect", "--adapter", GoldenAdapter);
        Assert.That(code, Is.EqualTo(0), stderr);
        var root = JsonNode.Parse(stdout)!.AsObject();
        Assert.That(root.Select(p => p.Key), Is.EqualTo(new[] { "adapter" }));
        Assert.That(root["adapter"]!["parameters"]!["share_of_total"], Is.Null);
        Assert.That(root["adapter"]!.AsObject().ContainsKey("fits_model"), Is.False);
    }

    [Test]
    public void InspectAdapter_ThatDoesNotFit_IsBadInputNamingTheKey()
    {
        // The golden adapter against a model whose MLP is wider: every MLP tensor no longer fits.
        var model = TestPaths.TempDir("cli-inspect-wide");
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(Golden, "config.json")))!;
        config["text_config"]!["intermediate_size"] = 256;
        File.WriteAllText(Path.Combine(model, "config.json"), config.ToJsonString());
        File.Copy(Path.Combine(Golden, "model.safetensors"), Path.Combine(model, "model.safetensors"));

        var (code, stdout, _) = Run("inspect", "--model", model, "--adapter", GoldenAdapter);

        Assert.That(code, Is.EqualTo(2));
        var a = JsonNode.Parse(stdout)!["adapter"]!;
        Assert.That(a["fits_model"]!.GetValue<bool>(), Is.False);
        Assert.That(a["fit_problems"]!.AsArray().Select(p => p!.GetValue<string>()),
            Has.Some.Contains("base_model.model.model.language_model.layers.1.mlp.up_proj.lora_B.weight").And.Some.Contains("[256,4]"));
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
