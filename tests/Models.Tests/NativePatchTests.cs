using Qwen35.Models.Runtime;
using TorchSharp;

namespace Qwen35.Models.Tests;

public class NativePatchTests
{
    static string ShimPath => Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");

    [Test]
    public void TorchLoadsAndComputes()
    {
        using var a = torch.ones(2, 3);
        using var s = a.sum();
        Assert.That(s.ToSingle(), Is.EqualTo(6f));
    }

    [Test]
    public void ShimInOutputFolderIsPatchedAndPatchIsIdempotent()
    {
        Assert.That(File.Exists(ShimPath), Is.True, ShimPath);
        Assert.That(TorchSharpNativePatch.Check(ShimPath), Is.EqualTo(TorchSharpNativePatch.PatchResult.AlreadyWeak));

        var copy = Path.Combine(Qwen35.Tests.TestPaths.TempDir(), "shim.so");
        File.Copy(ShimPath, copy);
        Assert.That(TorchSharpNativePatch.PatchFile(copy), Is.EqualTo(TorchSharpNativePatch.PatchResult.AlreadyWeak));
        var before = File.ReadAllBytes(copy);
        TorchSharpNativePatch.PatchFile(copy);
        Assert.That(File.ReadAllBytes(copy), Is.EqualTo(before), "second patch must not change the file");
    }

    [Test]
    public void PatchSetsOnlyTheWeakFlagOnAnUnpatchedShim()
    {
        var pristine = FindPristineShim();
        if (pristine == null) Assert.Ignore("no unpatched libLibTorchSharp.so in the NuGet cache to test against");
        var copy = Path.Combine(Qwen35.Tests.TestPaths.TempDir(), "shim.so");
        File.Copy(pristine!, copy);
        var before = File.ReadAllBytes(copy);
        Assert.That(TorchSharpNativePatch.Check(copy), Is.EqualTo(TorchSharpNativePatch.PatchResult.Patched), "pristine shim should need the patch");
        Assert.That(TorchSharpNativePatch.PatchFile(copy), Is.EqualTo(TorchSharpNativePatch.PatchResult.Patched));
        var after = File.ReadAllBytes(copy);
        Assert.That(after.Length, Is.EqualTo(before.Length));
        var diffs = Enumerable.Range(0, before.Length).Where(i => before[i] != after[i]).ToArray();
        Assert.That(diffs, Has.Length.EqualTo(1), "exactly one byte (the low byte of vna_flags) changes");
        Assert.That(after[diffs[0]] ^ before[diffs[0]], Is.EqualTo(2), "the changed bit is VER_FLG_WEAK");
    }

    [Test]
    public void RejectsNonElfInput()
    {
        var path = Path.Combine(Qwen35.Tests.TestPaths.TempDir(), "not-elf.so");
        File.WriteAllText(path, "definitely not an ELF file, but long enough to have a header of sixty-four bytes........");
        Assert.Throws<InvalidDataException>(() => TorchSharpNativePatch.PatchFile(path));
    }

    static string? FindPristineShim()
    {
        var root = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
                   ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        var p = Path.Combine(root, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        return File.Exists(p) ? p : null;
    }
}
