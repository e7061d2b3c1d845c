using System.CommandLine;
using System.Text.Json;
using Qwen35.Cli.Commands;
using Qwen35.Tests;

namespace Qwen35.Cli.Tests;

/// <summary>`trainer doctor` on the CPU build: it names the libtorch it loaded, finds no missing symbol there, and
/// reports (exit 4) the symbols a given partial libtorch folder lacks.</summary>
public class DoctorCommandTests
{
    static string NativeDir => Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native");

    static (int Code, string Out, string Err) Invoke(params string[] args) =>
        CliRunner.Run([DoctorCommand.Build()], args);

    [Test]
    public void ReportsTheLoadedLibtorchAsComplete()
    {
        var json = Path.Combine(TestPaths.TempDir("qwen35-doctor"), "doctor.json");
        var (code, stdout, stderr) = Invoke("doctor", "--json", json);
        Assert.That(code, Is.EqualTo(0), stdout + stderr);
        var doc = JsonDocument.Parse(File.ReadAllText(json)).RootElement;
        Assert.That(doc.GetProperty("loaded_libtorch").GetString(), Is.EqualTo(NativeDir));
        Assert.That(doc.GetProperty("loaded_symbols_required").GetInt32(), Is.GreaterThan(1000));
        Assert.That(doc.GetProperty("loaded_symbols_missing").GetArrayLength(), Is.EqualTo(0));
        Assert.That(doc.GetProperty("cuda_available").GetBoolean(), Is.False, "the test build is CPU-only");
        Assert.That(stdout, Does.Contain("symbols missing      0"));
    }

    [Test]
    public void APartialLibtorchFolderFailsWithTheMissingSymbols()
    {
        var dir = TestPaths.TempDir("qwen35-doctor-part");
        File.Copy(Path.Combine(NativeDir, "libc10.so"), Path.Combine(dir, "libc10.so"));
        var json = Path.Combine(dir, "doctor.json");
        var (code, stdout, _) = Invoke("doctor", "--libtorch", dir, "--json", json);
        Assert.That(code, Is.EqualTo(CliErrors.CheckFailed), stdout);
        var missing = JsonDocument.Parse(File.ReadAllText(json)).RootElement.GetProperty("given_symbols_missing")
            .EnumerateArray().Select(e => e.GetString()).ToList();
        Assert.That(missing, Does.Contain("_ZN2at4_ops12index_select4callERKNS_6TensorElS4_"));
        Assert.That(stdout, Does.Contain($"symbols missing      {missing.Count}"));
    }

    [Test]
    public void AMissingFolderIsBadInput()
    {
        var (code, _, stderr) = Invoke("doctor", "--libtorch", "/nonexistent/torch/lib");
        Assert.That(code, Is.EqualTo(2));
        Assert.That(stderr, Does.Contain("/nonexistent/torch/lib"));
    }
}
