using System.CommandLine;
using System.Text.Json;
using Qwen35.Cli.Commands;
using Qwen35.Tests;

namespace Qwen35.Cli.Tests;

/// <summary>The score and inspect verbs, parsed and run in-process on the golden tiny model.</summary>
public class ModelVerbTests
{
    static (int Code, string Out, string Err) Invoke(params string[] args) =>
        CliRunner.Run([ScoreCommand.Build(), InspectCommand.Build()], args);

    static string TokensFile(string json)
    {
        var path = Path.Combine(TestPaths.TempDir("qwen35-score"), "tokens.json");
        File.WriteAllText(path, json);
        return path;
    }

    static JsonElement ExpectedJson() =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(TestPaths.GoldenTiny, "expected.json"))).RootElement;

    [Test]
    public void ScoreReproducesGoldenLosses()
    {
        var (code, stdout, stderr) = Invoke("score", "--model", TestPaths.GoldenTiny, "--tokens", Path.Combine(TestPaths.GoldenTiny, "inputs.json"));
        Assert.That(code, Is.EqualTo(0), stderr);
        var losses = JsonDocument.Parse(stdout).RootElement.GetProperty("losses").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        var expected = ExpectedJson().GetProperty("losses").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        Assert.That(losses, Has.Length.EqualTo(3));
        for (var i = 0; i < 3; i++) Assert.That(losses[i], Is.EqualTo(expected[i]).Within(1e-5), $"sequence {i}");
        Assert.That(stderr, Does.Contain("skipped"), "logs go to stderr");
    }

    [Test]
    public void ScoreWithAdapterReproducesGoldenLoraLoss()
    {
        var seq0 = JsonDocument.Parse(File.ReadAllText(Path.Combine(TestPaths.GoldenTiny, "inputs.json"))).RootElement
            .GetProperty("sequences")[0].GetRawText();
        var (code, stdout, stderr) = Invoke("score", "--model", TestPaths.GoldenTiny,
            "--adapter", Path.Combine(TestPaths.GoldenTiny, "adapter"), "--tokens", TokensFile($"{{\"sequences\": [{seq0}]}}"));
        Assert.That(code, Is.EqualTo(0), stderr);
        var loss = JsonDocument.Parse(stdout).RootElement.GetProperty("losses")[0].GetDouble();
        Assert.That(loss, Is.EqualTo(ExpectedJson().GetProperty("lora").GetProperty("loss").GetDouble()).Within(1e-5));
    }

    [TestCase("{\"sequences\": [[1, 2, 3], [4]]}", "sequences[1] has 1 token(s)")]
    [TestCase("{\"sequences\": [[1, 2, 3], [4, \"x\"]]}", "sequences[1][1] is not an integer")]
    [TestCase("{\"sequences\": [[1, 2, 9999]]}", "sequences[0][2] = 9999 is outside the vocabulary")]
    [TestCase("{\"seqs\": []}", "\"sequences\"")]
    [TestCase("not json", "invalid JSON")]
    public void ScoreRejectsBadTokensFileNamingIt(string json, string expected)
    {
        var path = TokensFile(json);
        var (code, stdout, stderr) = Invoke("score", "--model", TestPaths.GoldenTiny, "--tokens", path);
        Assert.That(code, Is.EqualTo(2), stderr);
        Assert.That(stderr, Does.Contain(path).And.Contain(expected));
        Assert.That(stdout, Is.Empty);
    }

    [Test]
    public void InspectSummarisesGoldenFolder()
    {
        var (code, stdout, stderr) = Invoke("inspect", "--model", TestPaths.GoldenTiny, "--json");
        Assert.That(code, Is.EqualTo(0), stderr);
        var root = JsonDocument.Parse(stdout).RootElement.GetProperty("model");
        Assert.Multiple(() =>
        {
            Assert.That(root.GetProperty("layer_pattern").GetString(), Is.EqualTo("LLLF"));
            // 56 text tensors in the golden checkpoint; count = the README's table arithmetic.
            Assert.That(root.GetProperty("parameters").GetProperty("tensors").GetInt32(), Is.EqualTo(56));
            Assert.That(root.GetProperty("parameters").GetProperty("by_module_type").GetProperty("lm_head").GetInt64(), Is.EqualTo(512 * 64));
            var ckpt = root.GetProperty("checkpoint");
            Assert.That(ckpt.GetProperty("skipped").GetProperty("model.visual.*").GetInt32(), Is.EqualTo(21));
            Assert.That(ckpt.GetProperty("skipped").GetProperty("mtp.*").GetInt32(), Is.EqualTo(15));
            Assert.That(ckpt.GetProperty("dtypes").GetProperty("F32").GetInt32(), Is.EqualTo(56));
            Assert.That(ckpt.GetProperty("problem").ValueKind, Is.EqualTo(JsonValueKind.Null));
            Assert.That(root.GetProperty("config").GetProperty("hidden_size").GetInt32(), Is.EqualTo(64));
        });
    }

    [Test]
    public void Inspect_ByDefault_PrintsAShortHumanSummary()
    {
        var (code, stdout, stderr) = Invoke("inspect", "--model", TestPaths.GoldenTiny);
        Assert.That(code, Is.EqualTo(0), stderr);
        var lines = stdout.TrimEnd().Split('\n');
        var summary = Qwen35.Models.Config.Qwen35TextConfig.Load(Path.Combine(TestPaths.GoldenTiny, "config.json")).Summary();
        Assert.Multiple(() =>
        {
            Assert.That(stdout.TrimStart(), Does.Not.StartWith("{"), "JSON only with --json");
            Assert.That(lines, Has.Length.LessThanOrEqualTo(10));
            Assert.That(lines[0], Is.EqualTo("model: " + TestPaths.GoldenTiny));
            Assert.That(lines, Does.Contain("  config: " + summary));
            Assert.That(lines, Does.Contain("  layers: LLLF (3 linear, 1 full)"));
            // The README's tiny model has 200,360 base parameters tied; the golden model is the same shape untied,
            // so its lm_head adds 512 x 64 = 32,768.
            Assert.That(lines, Has.Some.StartsWith("  parameters: 233,128 in 56 tensors"));
            Assert.That(lines, Does.Contain("  dtypes: F32 56"));
            Assert.That(lines, Does.Contain("  skipped: model.visual.* 21, mtp.* 15"));
            Assert.That(lines, Does.Contain("  problem: none"));
        });
    }

    [Test]
    public void InspectMissingFolderIsBadInput()
    {
        var (code, _, stderr) = Invoke("inspect", "--model", Path.Combine(TestPaths.TempDir(), "nope"));
        Assert.That(code, Is.EqualTo(2));
        Assert.That(stderr, Does.Contain("nope"));
    }

    [Test]
    public void TrainerProgramRunsScoreWithJsonOnStdoutAndLogsOnStderr()
    {
        // The real program (registration in CommandRegistry, Program.cs), as a user runs it.
        var dll = Path.Combine(AppContext.BaseDirectory, "trainer.dll");
        var psi = new System.Diagnostics.ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var a in new[] { dll, "score", "--model", TestPaths.GoldenTiny, "--tokens", Path.Combine(TestPaths.GoldenTiny, "inputs.json") })
            psi.ArgumentList.Add(a);
        using var p = System.Diagnostics.Process.Start(psi)!;
        var stderrTask = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEnd();
        Assert.That(p.WaitForExit(120_000), Is.True, "trainer score did not finish");
        var stderr = stderrTask.Result;
        Assert.That(p.ExitCode, Is.EqualTo(0), stderr);
        var losses = JsonDocument.Parse(stdout).RootElement.GetProperty("losses").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        var expected = ExpectedJson().GetProperty("losses").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        Assert.That(losses, Is.EqualTo(expected).Within(1e-5));
        Assert.That(stderr, Does.Contain("loaded 56 tensors"));
    }
}
