using Qwen35.Tests;

namespace Qwen35.Training.Tests;

public class OutputDirectoryTests
{
    /// <summary>Everything a run leaves in output_dir, crash leftovers (temporary files and folders) included.</summary>
    static string EarlierRun()
    {
        var dir = TestPaths.TempDir("outdir");
        Directory.CreateDirectory(Path.Combine(dir, "checkpoints", "step_000002", "adapter"));
        File.WriteAllText(Path.Combine(dir, "checkpoints", "step_000002", "trainer_state.json"), "{}");
        Directory.CreateDirectory(Path.Combine(dir, "checkpoints", $".tmp-step_000004-{Guid.NewGuid():N}"));
        Directory.CreateDirectory(Path.Combine(dir, "adapter"));
        foreach (var f in new[] { "adapter_model.safetensors", "adapter_config.json", "README.md", "README.md.tmp" })
            File.WriteAllText(Path.Combine(dir, "adapter", f), "x");
        foreach (var f in new[] { "metrics.jsonl", "metrics.jsonl.tmp", "train.log.jsonl", "loss.png", "loss.png.tmp.png", "recipe.yaml", $".recipe.yaml.{Guid.NewGuid():N}.tmp" })
            File.WriteAllText(Path.Combine(dir, f), "x");
        return dir;
    }

    [Test]
    public void OverwriteRemovesExactlyTheRunsFilesAndOnlyAtBegin()
    {
        var dir = EarlierRun();
        var before = Directory.GetFileSystemEntries(dir, "*", SearchOption.AllDirectories).Length;
        var e = Assert.Throws<OutputDirectoryException>(() => OutputDirectory.Check(dir, OutputMode.Fresh));
        Assert.That(e!.Message, Does.StartWith($"output_dir '{dir}': holds an earlier run"));

        var output = OutputDirectory.Check(dir, OutputMode.Overwrite);
        Assert.That(Directory.GetFileSystemEntries(dir, "*", SearchOption.AllDirectories), Has.Length.EqualTo(before), "Check changes nothing");
        output.Begin();
        Assert.That(Directory.GetFileSystemEntries(dir), Is.Empty);

        Assert.DoesNotThrow(() => OutputDirectory.Check(dir, OutputMode.Fresh), "an empty existing folder is fine");
        Assert.DoesNotThrow(() => OutputDirectory.Check(EarlierRun(), OutputMode.Resume));
    }

    [TestCase("notes.txt")]
    [TestCase("checkpoints/mine.txt")]
    [TestCase("adapter/other_adapter/x.bin")]
    [TestCase("metrics.jsonl.bak")]
    public void AFileTheTrainerDoesNotWriteIsNeverDeleted(string foreign)
    {
        var dir = EarlierRun();
        var path = Path.Combine(dir, foreign);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, "mine");
        var e = Assert.Throws<OutputDirectoryException>(() => OutputDirectory.Check(dir, OutputMode.Overwrite));
        Assert.That(e!.Message, Does.Contain("holds files a training run does not write").And.Contain(foreign.Split('/')[0]));
        Assert.That(File.ReadAllText(path), Is.EqualTo("mine"));
    }

    [Test]
    public void ANewFolderIsNotCreatedByTheCheck()
    {
        var dir = Path.Combine(TestPaths.TempDir("outdir-new"), "a", "b");
        var output = OutputDirectory.Check(dir, OutputMode.Fresh);
        Assert.That(Directory.Exists(Path.GetDirectoryName(dir)), Is.False);
        output.Begin();
        Assert.That(Directory.Exists(dir));
    }
}
