namespace Qwen35.Tests;

/// <summary>Locates the repository's fixture folders from a test's output directory.</summary>
public static class TestPaths
{
    /// <summary>The repository root: the first parent of the test binaries that holds Trainer.sln.</summary>
    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>tests/fixtures: small golden data copied into the repository so the tests stand alone.</summary>
    public static string Fixtures => Path.Combine(RepoRoot, "tests", "fixtures");

    /// <summary>The golden tiny Qwen3.5 model produced by Hugging Face's code (tests/fixtures/qwen35-tiny-a).</summary>
    public static string GoldenTiny => Path.Combine(Fixtures, "qwen35-tiny-a");

    /// <summary>The shared reference folder beside the repository (../shared); large fixtures live there only.</summary>
    public static string Shared => Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared"));

    /// <summary>
    /// Path of a file under ../shared, or an NUnit Ignore with the reason when the folder is absent, so a
    /// skipped test says why instead of passing silently.
    /// </summary>
    public static string RequireShared(params string[] parts)
    {
        var path = Path.Combine([Shared, .. parts]);
        if (!File.Exists(path) && !Directory.Exists(path))
            Assert.Ignore($"needs {path}, which is not in this checkout (large fixtures are read from ../shared, not copied)");
        return path;
    }

    /// <summary>A fresh empty temporary directory, removed at process exit.</summary>
    public static string TempDir(string prefix = "qwen35-test")
    {
        var dir = Path.Combine(Path.GetTempPath(), $"{prefix}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        return dir;
    }

    static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Trainer.sln"))) return dir.FullName;
        throw new InvalidOperationException("Trainer.sln not found above " + AppContext.BaseDirectory);
    }
}
