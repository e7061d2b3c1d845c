using System.CommandLine;
using System.Text.Json.Nodes;
using Qwen35.Cli.Commands;
using Qwen35.Tests;
using Qwen35.Training.Observability;

namespace Qwen35.Cli.Tests;

public class TrainCliTests
{
    static (int Code, string Out, string Err) Run(params string[] args) => CliRunner.RunProgram([TrainCommand.Build(), EvalCommand.Build(), BenchCommand.Build()], args);

    /// <summary>The shipped tiny recipe, short: 4 steps of 256-token rows, checkpoints every 2 steps.</summary>
    static string[] Tiny(string output, params string[] extra) =>
    [
        "--recipe", "tiny", "--set", $"output_dir={output}", "--set", "schedule.max_steps=4", "--set", "data.max_length=256",
        "--set", "data.pack_length=256", "--set", "save_every=2", "--set", "eval_every=2", "--set", "cpu_threads=1", "--no-progress", .. extra,
    ];

    [Test]
    public void RecipeAloneTrainsAndResumeReproducesTheFinalLoss()
    {
        // Default verb: no `train` word.
        var full = TestPaths.TempDir("cli-train");
        var (code, stdout, stderr) = Run(Tiny(full));
        Assert.That(code, Is.EqualTo(0), stderr);
        Assert.That(stdout, Does.Contain("adapter: "));
        foreach (var f in new[] { "adapter/adapter_model.safetensors", "adapter/adapter_config.json", "metrics.jsonl", "loss.png", "train.log.jsonl" })
            Assert.That(File.Exists(Path.Combine(full, f)), f);
        var metrics = MetricsWriter.Read(Path.Combine(full, "metrics.jsonl"));
        Assert.That(metrics[0].Loss!.Value, Is.GreaterThan(metrics[^1].Loss!.Value));

        // An interrupted copy: only the step-2 checkpoint survives; `train --resume` must land on the same numbers.
        var cut = TestPaths.TempDir("cli-resume");
        CopyDir(Path.Combine(full, "checkpoints", "step_000002"), Path.Combine(cut, "checkpoints", "step_000002"));
        File.WriteAllLines(Path.Combine(cut, "metrics.jsonl"), File.ReadLines(Path.Combine(full, "metrics.jsonl")).Take(2));
        (code, _, stderr) = Run(["train", .. Tiny(cut, "--resume")]);
        Assert.That(code, Is.EqualTo(0), stderr);
        Assert.That(stderr, Does.Contain("resume: ").And.Contain("step_000002"));
        var resumed = MetricsWriter.Read(Path.Combine(cut, "metrics.jsonl"));
        Assert.That(resumed.Select(m => m.Loss), Is.EqualTo(metrics.Select(m => m.Loss)), "bit-exact loss curve after resume");
        Assert.That(resumed[^1].EvalLoss, Is.EqualTo(metrics[^1].EvalLoss));

        // eval: the trained adapter lowers the loss of the base model on the sample data.
        var data = Path.Combine(TestPaths.RepoRoot, "data", "sample", "ja_safety_sample.jsonl");
        var evalArgs = new[] { "eval", "--model", "builtin:tiny", "--data", data, "--max-length", "256", "--json" };
        var (c1, baseJson, e1) = Run(evalArgs);
        Assert.That(c1, Is.EqualTo(0), e1);
        var (c2, adaptedJson, e2) = Run([.. evalArgs, "--adapter", Path.Combine(full, "adapter")]);
        Assert.That(c2, Is.EqualTo(0), e2);
        var before = JsonNode.Parse(baseJson)!;
        var after = JsonNode.Parse(adaptedJson)!;
        Assert.That((double)after["loss"]!, Is.LessThan((double)before["loss"]!));
        Assert.That(after["by_category"]!.AsObject().Select(kv => kv.Key), Does.Contain("safety_refusal"));
    }

    [Test]
    public void BadRecipeInputExitsTwoNamingKeyAndLine()
    {
        var recipe = Path.Combine(TestPaths.TempDir("cli-bad"), "r.yaml");
        File.WriteAllText(recipe, "model: builtin:tiny\ndata:\n  train: x.jsonl\n  max_lenght: 5\n");
        var (code, _, stderr) = Run("--recipe", recipe);
        Assert.That(code, Is.EqualTo(2));
        Assert.That(stderr, Does.Contain("line 4").And.Contain("data.max_lenght").And.Contain("max_length"));

        (code, _, stderr) = Run("train", "--recipe", "tiny", "--set", "schedule.epochs=many");
        Assert.That(code, Is.EqualTo(2));
        Assert.That(stderr, Does.Contain("--set schedule.epochs=many"));

        (code, _, stderr) = Run("--recipe", "tiny", "--set", "data.train=/no/such/file.jsonl", "--set", $"output_dir={TestPaths.TempDir("cli-nofile")}", "--no-progress");
        Assert.That(code, Is.EqualTo(2), stderr);
        Assert.That(stderr, Does.Contain("/no/such/file.jsonl"));

        // A malformed dataset row fails fast (on_bad_row: fail) naming the file and the row.
        var bad = Path.Combine(TestPaths.TempDir("cli-badrow"), "bad.jsonl");
        File.WriteAllLines(bad, ["{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"ok\"}]}", "{not json"]);
        (code, _, stderr) = Run("--recipe", "tiny", "--set", $"data.train={bad}", "--set", "data.on_bad_row=fail", "--set", $"output_dir={TestPaths.TempDir("cli-badrow-out")}", "--no-progress");
        Assert.That(code, Is.EqualTo(2), stderr);
        Assert.That(stderr, Does.Contain("bad.jsonl").And.Contain("line 2"));
    }

    [Test]
    public void UsageErrorsExitOne()
    {
        Assert.That(Run().Code, Is.EqualTo(1), "no recipe and no verb");
        Assert.That(Run("train").Code, Is.EqualTo(1), "train without --recipe");
        Assert.That(Run("bench").Code, Is.EqualTo(1), "bench without --shape or --recipe");
    }

    [Test]
    public void BenchTimesTinyStepsAndPrintsFlopsAndMfu()
    {
        var (code, stdout, stderr) = Run("bench", "--shape", "tiny", "--seq", "64", "--steps", "2", "--peak-tflops", "1");
        Assert.That(code, Is.EqualTo(0), stderr);
        Assert.That(stdout, Does.Contain("tokens_per_s: ").And.Contain("peak_memory: ").And.Contain("4N + 4Vd + 3*attn").And.Contain("mfu: "));
        Assert.That(stdout, Does.Not.Contain("mfu: n/a"));
    }

    static void CopyDir(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from)) File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
        foreach (var d in Directory.GetDirectories(from)) CopyDir(d, Path.Combine(to, Path.GetFileName(d)));
    }
}
