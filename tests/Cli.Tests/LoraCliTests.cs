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
        CliRunner.Run([ScoreCommand.Build(), InspectCommand.Build(), MergeCommand.Build()], args);

    /// <summary>A copy of the golden adapter with <paramref name="edit"/> applied to its adapter_config.json.</summary>
    static string AdapterWithConfig(Action<JsonObject> edit)
    {
        var dir = TestPaths.TempDir("cli-adapter-variant");
        File.Copy(Path.Combine(GoldenAdapter, "adapter_model.safetensors"), Path.Combine(dir, "adapter_model.safetensors"));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(GoldenAdapter, "adapter_config.json")))!.AsObject();
        edit(config);
        File.WriteAllText(Path.Combine(dir, "adapter_config.json"), config.ToJsonString());
        return dir;
    }

    /// <summary>A private copy of the golden model folder, so a merge that wrote into its model could not spoil the fixture.</summary>
    static string GoldenModelCopy()
    {
        var dir = TestPaths.TempDir("cli-model-copy");
        foreach (var f in new[] { "config.json", "model.safetensors" }) File.Copy(Path.Combine(Golden, f), Path.Combine(dir, f));
        return dir;
    }

    static string[] Listing(string dir) =>
        Directory.EnumerateFileSystemEntries(dir).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray()!;

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
        var (code, stdout, stderr) = Run("inspect", "--model", Golden, "--adapter", GoldenAdapter, "--json");
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
        Assert.That(a["target_problems"]!.AsArray(), Is.Empty);
    }

    [Test]
    public void InspectAdapter_Alone_HasOnlyTheAdapterSection()
    {
        var (code, stdout, stderr) = Run("inspect", "--adapter", GoldenAdapter, "--json");
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

        var (code, stdout, _) = Run("inspect", "--model", model, "--adapter", GoldenAdapter, "--json");

        Assert.That(code, Is.EqualTo(2));
        var a = JsonNode.Parse(stdout)!["adapter"]!;
        Assert.That(a["fits_model"]!.GetValue<bool>(), Is.False);
        Assert.That(a["fit_problems"]!.AsArray().Select(p => p!.GetValue<string>()),
            Has.Some.Contains("base_model.model.model.language_model.layers.1.mlp.up_proj.lora_B.weight").And.Some.Contains("[256, 4]"));
    }

    [Test]
    public void InspectAdapter_WhoseTargetModulesMatchNoneOfItsTensors_DoesNotFit()
    {
        // The issue: adapter_config.json names foo_proj, the tensors are for q_proj & co; inspect said fits_model: true.
        var adapter = AdapterWithConfig(c => c["target_modules"] = new JsonArray("foo_proj"));

        var (code, stdout, stderr) = Run("inspect", "--model", Golden, "--adapter", adapter, "--json");

        Assert.That(code, Is.EqualTo(2), stderr);
        var a = JsonNode.Parse(stdout)!["adapter"]!;
        Assert.That(a["fits_model"]!.GetValue<bool>(), Is.False);
        Assert.That(a["fit_problems"]!.AsArray(), Is.Empty, "every tensor itself fits the model's projections");
        var problems = a["target_problems"]!.AsArray().Select(p => p!.GetValue<string>()).ToList();
        Assert.That(problems, Has.Count.EqualTo(2));
        Assert.That(problems[0], Is.EqualTo("target_modules entry \"foo_proj\" matches none of the adapter's tensors and no module of the model"));
        Assert.That(problems[1], Does.StartWith("11 tensor modules are not selected by target_modules [foo_proj] (layers_to_transform 1, 3): " +
                                                "model.language_model.layers.1.linear_attn.in_proj_qkv, "));
    }

    [Test]
    public void InspectAdapter_Alone_WhoseTargetModulesMatchNoneOfItsTensors_IsBadInput()
    {
        var adapter = AdapterWithConfig(c => c["target_modules"] = new JsonArray("foo_proj", "q_proj"));

        var (code, stdout, stderr) = Run("inspect", "--adapter", adapter);

        Assert.That(code, Is.EqualTo(2), stderr);
        Assert.That(stdout, Does.Contain("  targets agree with the tensors: no (2 problems)\n"));
        Assert.That(stdout, Does.Contain("    - target_modules entry \"foo_proj\" matches none of the adapter's tensors\n"));
        Assert.That(stdout, Does.Not.Contain("\"q_proj\" matches none"));
        Assert.That(stderr.TrimEnd().Split('\n'), Has.Length.EqualTo(1));
        Assert.That(stderr, Does.Contain(adapter).And.Contain("target_modules"));
        Assert.That(stdout, Does.Contain("10 tensor modules are not selected by target_modules [foo_proj, q_proj]"));
    }

    [Test]
    public void InspectAdapter_WithModel_ByDefault_PrintsAShortHumanSummary()
    {
        var (code, stdout, stderr) = Run("inspect", "--model", Golden, "--adapter", GoldenAdapter);
        Assert.That(code, Is.EqualTo(0), stderr);
        var lines = stdout.TrimEnd().Split('\n');
        var adapterAt = Array.IndexOf(lines, "adapter: " + GoldenAdapter);
        Assert.That(adapterAt, Is.GreaterThan(0), stdout);
        var adapter = lines[adapterAt..];
        Assert.Multiple(() =>
        {
            Assert.That(stdout.TrimStart(), Does.Not.StartWith("{"));
            Assert.That(lines[0], Is.EqualTo("model: " + Golden));
            Assert.That(adapter, Does.Contain("  targets: down_proj, gate_proj, in_proj_qkv, o_proj, out_proj, q_proj, up_proj, v_proj; layers 1, 3"));
            Assert.That(adapter, Does.Contain("  modules: 11, rank 4, lora_alpha 8, scaling 2"));
            // 7,552 adapter parameters (README's table) of 233,128 + 7,552 with the golden model.
            Assert.That(adapter, Does.Contain("  parameters: 7,552 (3.1378% of 240,680 with the model)"));
            Assert.That(adapter, Has.Some.StartsWith("  warning: ").And.Some.Contains("21125"));
            Assert.That(adapter, Does.Contain("  fits the model: yes"));
            Assert.That(lines, Has.Length.LessThanOrEqualTo(25));
        });
    }

    [Test]
    public void InspectAdapter_ThatDoesNotFit_SummarySaysNoWithTheProblems()
    {
        var adapter = AdapterWithConfig(c => c["target_modules"] = new JsonArray("foo_proj"));
        var (code, stdout, _) = Run("inspect", "--model", Golden, "--adapter", adapter);
        Assert.That(code, Is.EqualTo(2));
        Assert.That(stdout, Does.Contain("  fits the model: no (2 problems)\n"));
        Assert.That(stdout, Does.Contain("    - target_modules entry \"foo_proj\" matches none of the adapter's tensors and no module of the model\n"));
    }

    [Test]
    public void Merge_IntoAnExistingNonEmptyOut_IsRefused_UnlessOverwrite()
    {
        var outDir = TestPaths.TempDir("cli-merge-existing");
        File.WriteAllText(Path.Combine(outDir, "keep.txt"), "precious");
        var model = GoldenModelCopy();

        var (code, stdout, stderr) = Run("merge", "--model", model, "--adapter", GoldenAdapter, "--out", outDir);

        Assert.That(code, Is.EqualTo(2));
        Assert.That(stderr.TrimEnd().Split('\n'), Has.Length.EqualTo(1), stderr);
        Assert.That(stderr, Does.Contain(outDir).And.Contain("--overwrite"));
        Assert.That(stdout, Is.Empty);
        Assert.That(Listing(outDir), Is.EqualTo(new[] { "keep.txt" }));

        var (code2, stdout2, stderr2) = Run("merge", "--model", model, "--adapter", GoldenAdapter, "--out", outDir, "--overwrite");

        Assert.That(code2, Is.EqualTo(0), stderr2);
        Assert.That(stdout2, Does.Contain("merged 11 adapters"));
        Assert.That(Listing(outDir), Is.EqualTo(new[] { "config.json", "model.safetensors" }), "the old contents are replaced, not mixed in");
        Assert.That(Listing(Path.GetDirectoryName(outDir)!).Where(n => n.Contains(Path.GetFileName(outDir)) && n != Path.GetFileName(outDir)),
            Is.Empty, "no temporary sibling left behind");
    }

    [Test]
    public void Merge_IntoAnEmptyExistingOut_IsAllowed()
    {
        var outDir = TestPaths.TempDir("cli-merge-empty");
        var (code, _, stderr) = Run("merge", "--model", GoldenModelCopy(), "--adapter", GoldenAdapter, "--out", outDir);
        Assert.That(code, Is.EqualTo(0), stderr);
        Assert.That(Listing(outDir), Is.EqualTo(new[] { "config.json", "model.safetensors" }));
    }

    [TestCase(false)]
    [TestCase(true)]
    public void Merge_IntoTheModelsOwnFolder_IsAnError_EvenWithOverwrite(bool overwrite)
    {
        var model = GoldenModelCopy();
        var before = File.ReadAllBytes(Path.Combine(model, "model.safetensors"));
        string[] args = ["merge", "--model", model, "--adapter", GoldenAdapter, "--out", model + "/", .. overwrite ? new[] { "--overwrite" } : []];

        var (code, stdout, stderr) = Run(args);

        Assert.That(code, Is.EqualTo(2));
        Assert.That(stderr.TrimEnd().Split('\n'), Has.Length.EqualTo(1), stderr);
        Assert.That(stderr, Does.Contain(model).And.Contain("--model"));
        Assert.That(stdout, Is.Empty);
        Assert.That(Listing(model), Is.EqualTo(new[] { "config.json", "model.safetensors" }));
        Assert.That(File.ReadAllBytes(Path.Combine(model, "model.safetensors")), Is.EqualTo(before));
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
