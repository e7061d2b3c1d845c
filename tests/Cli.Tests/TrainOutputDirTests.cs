using System.CommandLine;
using Qwen35.Cli.Commands;
using Qwen35.Tests;
using Qwen35.Training.Observability;

namespace Qwen35.Cli.Tests;

/// <summary>What `train` does with output_dir: refuses to mix a fresh run into an earlier one, starts clean only with
/// --overwrite (and never deletes a file the trainer did not write), rejects unusable folders before loading
/// anything, and leaves no folder behind when setup fails.</summary>
public class TrainOutputDirTests
{
    static (int Code, string Out, string Err) Run(params string[] args) => CliRunner.RunProgram([TrainCommand.Build()], args);

    static string[] Tiny(string output, params string[] extra) =>
    [
        "--recipe", "tiny", "--set", $"output_dir={output}", "--set", "schedule.max_steps=4", "--set", "data.max_length=128",
        "--set", "data.pack_length=128", "--set", "cpu_threads=1", "--no-progress", .. extra,
    ];

    static string[] ErrorLines(string stderr) =>
        stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => l.StartsWith("train: error:", StringComparison.Ordinal)).ToArray();

    [Test]
    public void AFreshRunIntoAnEarlierRunIsRefusedAndOverwriteStartsClean()
    {
        var dir = TestPaths.TempDir("cli-refuse");
        var (code, _, stderr) = Run(Tiny(dir, "--set", "save_every=1", "--set", "keep_last=4"));
        Assert.That(code, Is.EqualTo(0), stderr);
        var metrics = File.ReadAllBytes(Path.Combine(dir, "metrics.jsonl"));
        var adapter = File.ReadAllBytes(Path.Combine(dir, "adapter", "adapter_model.safetensors"));

        // The same command again (another seed, so a silent overwrite would change the files) is refused, changing nothing.
        (code, var stdout, stderr) = Run(Tiny(dir, "--set", "schedule.seed=7"));
        Assert.That(code, Is.EqualTo(2), stderr);
        Assert.That(stdout, Is.Empty);
        var lines = ErrorLines(stderr);
        Assert.That(lines, Has.Length.EqualTo(1), stderr);
        Assert.That(lines[0], Does.Contain("output_dir").And.Contain(dir).And.Contain("--resume").And.Contain("--overwrite"));
        Assert.That(File.ReadAllBytes(Path.Combine(dir, "metrics.jsonl")), Is.EqualTo(metrics));
        Assert.That(File.ReadAllBytes(Path.Combine(dir, "adapter", "adapter_model.safetensors")), Is.EqualTo(adapter));
        Assert.That(Directory.GetDirectories(Path.Combine(dir, "checkpoints")), Has.Length.EqualTo(4));

        // --overwrite: the earlier run's files are gone (no checkpoints: this run saves none; a fresh log and metrics).
        (code, _, stderr) = Run(Tiny(dir, "--set", "schedule.seed=7", "--set", "save_every=0", "--overwrite"));
        Assert.That(code, Is.EqualTo(0), stderr);
        Assert.That(Directory.Exists(Path.Combine(dir, "checkpoints")), Is.False, "the earlier run's checkpoints are removed");
        Assert.That(MetricsWriter.Read(Path.Combine(dir, "metrics.jsonl")).Select(m => m.Step), Is.EqualTo(new[] { 1, 2, 3, 4 }));
        Assert.That(File.ReadAllBytes(Path.Combine(dir, "adapter", "adapter_model.safetensors")), Is.Not.EqualTo(adapter));
        Assert.That(File.ReadAllText(Path.Combine(dir, "recipe.yaml")), Does.Contain("seed: 7"));
        var logRecipeLines = File.ReadLines(Path.Combine(dir, "train.log.jsonl")).Count(l => l.Contains("recipe ", StringComparison.Ordinal) && l.Contains("hash", StringComparison.Ordinal));
        Assert.That(logRecipeLines, Is.EqualTo(1), "train.log.jsonl holds only the new run");
    }

    [Test]
    public void OverwriteNeverDeletesFilesTheTrainerDidNotWrite()
    {
        var dir = TestPaths.TempDir("cli-unknown");
        var (code, _, stderr) = Run(Tiny(dir, "--set", "schedule.max_steps=1"));
        Assert.That(code, Is.EqualTo(0), stderr);
        File.WriteAllText(Path.Combine(dir, "notes.txt"), "mine");
        var metrics = File.ReadAllBytes(Path.Combine(dir, "metrics.jsonl"));

        (code, _, stderr) = Run(Tiny(dir, "--set", "schedule.max_steps=1", "--overwrite"));
        Assert.That(code, Is.EqualTo(2), stderr);
        var lines = ErrorLines(stderr);
        Assert.That(lines, Has.Length.EqualTo(1), stderr);
        Assert.That(lines[0], Does.Contain("output_dir").And.Contain(dir).And.Contain("notes.txt"));
        Assert.That(File.ReadAllText(Path.Combine(dir, "notes.txt")), Is.EqualTo("mine"));
        Assert.That(File.ReadAllBytes(Path.Combine(dir, "metrics.jsonl")), Is.EqualTo(metrics), "nothing is deleted when refusing");

        // A folder of someone else's files is refused for a fresh run too (without --overwrite).
        var foreign = TestPaths.TempDir("cli-foreign");
        File.WriteAllText(Path.Combine(foreign, "thesis.tex"), "mine");
        (code, _, stderr) = Run(Tiny(foreign));
        Assert.That(code, Is.EqualTo(2), stderr);
        Assert.That(ErrorLines(stderr).Single(), Does.Contain("output_dir").And.Contain("thesis.tex"));
        Assert.That(Directory.GetFileSystemEntries(foreign).Select(Path.GetFileName), Is.EqualTo(new[] { "thesis.tex" }));

        // --overwrite with --resume makes no sense.
        (code, _, stderr) = Run(Tiny(dir, "--overwrite", "--resume"));
        Assert.That(code, Is.EqualTo(2), stderr);
        Assert.That(ErrorLines(stderr).Single(), Does.Contain("--overwrite").And.Contain("--resume"));
    }

    [Test]
    public void UnusableOutputDirIsBadInputNamingTheKey()
    {
        var file = Path.Combine(TestPaths.TempDir("cli-outfile"), "a-file");
        File.WriteAllText(file, "x");
        foreach (var (path, what) in new[] { (file, "file"), ("/proc/qwen35-trainer-test", "/proc"), ("/sys/qwen35", "/sys"), ("/dev/qwen35", "/dev"), (Path.Combine(file, "sub"), "file") })
        {
            var (code, stdout, stderr) = Run(Tiny(path));
            Assert.That(code, Is.EqualTo(2), $"{path}: {stderr}");
            Assert.That(stdout, Is.Empty);
            var lines = ErrorLines(stderr);
            Assert.That(lines, Has.Length.EqualTo(1), stderr);
            Assert.That(lines[0], Does.Contain("output_dir").And.Contain(path).And.Contain(what));
            Assert.That(stderr, Does.Not.Contain("   at "), "no stack trace");
            Assert.That(stderr, Does.Not.Contain("model: "), "checked before the model is loaded");
        }
    }

    [Test]
    public void ARunThatFailsDuringSetupLeavesNoFolder()
    {
        var parent = TestPaths.TempDir("cli-nofolder");
        var output = Path.Combine(parent, "run", "nested");
        var (code, _, stderr) = Run(Tiny(output, "--set", "data.train=/no/such/file.jsonl"));
        Assert.That(code, Is.EqualTo(2), stderr);
        (code, _, stderr) = Run(Tiny(output, "--set", "model=/no/such/model"));
        Assert.That(code, Is.EqualTo(2), stderr);
        (code, _, stderr) = Run(Tiny(output, "--resume"));
        Assert.That(code, Is.EqualTo(2), stderr);
        Assert.That(stderr, Does.Contain("no checkpoint"));
        Assert.That(Directory.GetFileSystemEntries(parent), Is.Empty, "no output folder (nor its parents) left behind");
    }

    [Test]
    public void ANonFiniteEvalLossFailsTheRunKeepingItsCheckpoints()
    {
        var dir = TestPaths.TempDir("cli-naneval");
        var (code, stdout, stderr) = Run(Tiny(dir, "--set", "schedule.learning_rate=1e30", "--set", "eval_every=2", "--set", "save_every=1"));
        Assert.That(code, Is.EqualTo(3), stderr);
        Assert.That(stderr, Does.Contain("eval loss").And.Contain("step 2"));
        Assert.That(stderr, Does.Not.Contain("   at "), "explained by its message, not a stack trace");
        Assert.That(stdout, Does.Not.Contain("adapter: "));
        Assert.That(Directory.Exists(Path.Combine(dir, "checkpoints", "step_000001")), "checkpoints written before the failure are kept");
    }
}
