using System.CommandLine;
using System.Text.Json;
using Qwen35.Cli.Commands;
using Qwen35.Models.SafeTensors;
using Qwen35.Tests;
using static TorchSharp.torch;

namespace Qwen35.Cli.Tests;

/// <summary>
/// `trainer verify`: the golden comparisons as a command, so a GPU machine without the .NET SDK can run them. On the
/// CPU it must pass against the Hugging Face reference set in fp32 (exact bounds) and bf16 (reduced bounds), and it
/// must fail when the model computes something else.
/// </summary>
public class VerifyCommandTests
{
    static (int Code, string Out, string Err) Invoke(params string[] args) =>
        CliRunner.Run([VerifyCommand.Build()], args);

    static JsonElement Checks(string jsonPath) => JsonDocument.Parse(File.ReadAllText(jsonPath)).RootElement;

    [TestCase("float32", true, 14)]
    [TestCase("bf16", false, 17)]
    public void PassesAgainstTheGoldenSetOnCpu(string dtype, bool exact, int checks)
    {
        var json = Path.Combine(TestPaths.TempDir("qwen35-verify"), "verify.json");
        var (code, stdout, stderr) = Invoke("verify", "--golden", TestPaths.GoldenTiny, "--dtype", dtype, "--json", json);
        Assert.That(code, Is.EqualTo(0), stdout + stderr);
        Assert.That(stdout, Does.Contain($"all {checks} checks passed"));
        var doc = Checks(json);
        Assert.That(doc.GetProperty("exact_bounds").GetBoolean(), Is.EqualTo(exact));
        Assert.That(doc.GetProperty("passed").GetBoolean(), Is.True);
        var results = doc.GetProperty("checks").EnumerateArray().ToList();
        Assert.That(results, Has.Count.EqualTo(checks));
        Assert.That(results.All(r => r.GetProperty("value").GetDouble() <= r.GetProperty("bound").GetDouble()), Is.True);
        // Every part of the pipeline is covered: forward, losses, decoding, packing, LoRA forward and gradients.
        var names = results.Select(r => r.GetProperty("name").GetString()!).ToList();
        foreach (var part in new[] { "seq2 logits", "losses", "cached decode", "packed row, offsets", "packed row, mask only", "LoRA loss", "LoRA grads, checkpointed", "training, 20 steps" })
            Assert.That(names.Any(n => n.StartsWith(part, StringComparison.Ordinal)), Is.True, part);
    }

    /// <summary>A model that is slightly wrong (one DeltaNet decay parameter moved by 1%) must fail the fp32 check with
    /// exit code 4, and the report must say which comparisons broke.</summary>
    [Test]
    public void FailsWhenTheModelDiffersFromTheReference()
    {
        var dir = CopyGolden();
        var modelPath = Path.Combine(dir, "model.safetensors");
        const string key = "model.language_model.layers.1.linear_attn.A_log";
        List<(string, Tensor)> tensors;
        using (var file = SafeTensorsFile.Open(modelPath))
            tensors = file.Tensors.Keys.Select(k => (k, k == key ? file.Load(k) * 1.01 : file.Load(k))).ToList();
        Assert.That(tensors.Any(t => t.Item1 == key), Is.True, "the perturbed tensor exists");
        SafeTensorsWriter.Write(modelPath, tensors);

        var json = Path.Combine(dir, "verify.json");
        var (code, stdout, _) = Invoke("verify", "--golden", dir, "--json", json);
        Assert.That(code, Is.EqualTo(CliErrors.CheckFailed), stdout);
        Assert.That(stdout, Does.Contain("FAIL").And.Contain("checks FAILED"));
        var failed = Checks(json).GetProperty("checks").EnumerateArray().Where(r => !r.GetProperty("passed").GetBoolean())
            .Select(r => r.GetProperty("name").GetString()).ToList();
        Assert.That(failed, Does.Contain("seq0 logits").And.Contain("LoRA grads"));
        // Packing is compared with the same model run alone, so a wrong weight does not break it.
        Assert.That(failed, Does.Not.Contain("packed row, offsets"));
    }

    [Test]
    public void MissingReferenceFilesAreNamed()
    {
        var dir = CopyGolden();
        File.Delete(Path.Combine(dir, "expected_lora_grads.safetensors"));
        var (code, _, stderr) = Invoke("verify", "--golden", dir);
        Assert.That(code, Is.EqualTo(2));
        Assert.That(stderr, Does.Contain("expected_lora_grads.safetensors"));

        (code, _, stderr) = Invoke("verify", "--golden", Path.Combine(dir, "nope"));
        Assert.That(code, Is.EqualTo(2));
        Assert.That(stderr, Does.Contain("nope"));
    }

    [Test]
    public void Tf32IsRefusedOffCuda()
    {
        var (code, _, stderr) = Invoke("verify", "--golden", TestPaths.GoldenTiny, "--tf32");
        Assert.That(code, Is.EqualTo(2));
        Assert.That(stderr, Does.Contain("--tf32 applies to CUDA only"));
    }

    [Test]
    public void CudaIsRefusedClearlyOnACpuBuild()
    {
        var (code, _, stderr) = Invoke("verify", "--golden", TestPaths.GoldenTiny, "--device", "cuda");
        Assert.That(code, Is.EqualTo(2));
        Assert.That(stderr, Does.Contain("CUDA is not available"));
    }

    static string CopyGolden()
    {
        var dir = TestPaths.TempDir("qwen35-verify-copy");
        foreach (var file in Directory.EnumerateFiles(TestPaths.GoldenTiny, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(dir, Path.GetRelativePath(TestPaths.GoldenTiny, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
        return dir;
    }
}
