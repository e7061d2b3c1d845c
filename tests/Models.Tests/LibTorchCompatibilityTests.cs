using Qwen35.Models.Runtime;
using Qwen35.Tests;
using TorchSharp;

namespace Qwen35.Models.Tests;

/// <summary>
/// The ELF symbol reader and the shim-against-libtorch check behind `trainer doctor`, on the CPU libtorch 2.10 that
/// the tests run with (TorchSharp 0.107 was built against it, so nothing may be missing) and on a folder that holds
/// only part of libtorch (so the parts not there must be reported, and nothing that is there).
/// </summary>
public class LibTorchCompatibilityTests
{
    static string NativeDir => Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native");
    static string ShimPath => Path.Combine(NativeDir, "libLibTorchSharp.so");

    // at::_ops::index_select::call(at::Tensor const&, long, at::Tensor const&) in the Itanium C++ ABI: the op behind
    // TorchSharp's THSTensor_index_select (both names appear in a libtorch stack trace of that call).
    const string IndexSelectCall = "_ZN2at4_ops12index_select4callERKNS_6TensorElS4_";

    [Test]
    public void ReadsTheShimsExportsAndImports()
    {
        var exports = ElfSymbols.Exports(ShimPath);
        var imports = ElfSymbols.Imports(ShimPath);
        Assert.That(exports, Does.Contain("THSTensor_index_select").And.Contain("THSBackend_cudnn_set_allow_tf32"));
        Assert.That(imports, Does.Contain(IndexSelectCall));
        Assert.That(imports, Does.Not.Contain("THSTensor_index_select"));
        Assert.That(ElfSymbols.Exports(Path.Combine(NativeDir, "libtorch_cpu.so")), Does.Contain(IndexSelectCall));
    }

    [Test]
    public void ShimFindsEverySymbolInTheLibtorchItWasBuiltFor()
    {
        using var probe = torch.ones(1);   // make sure this process really runs on that libtorch
        Assert.That(LibTorchCompatibility.LoadedFrom("libtorch_cpu.so"), Is.EqualTo(NativeDir));
        var c = LibTorchCompatibility.Check(ShimPath, NativeDir);
        Assert.That(c.Required, Is.GreaterThan(1000), "TorchSharp binds about 1,200 libtorch symbols");
        Assert.That(c.Missing, Is.Empty);
        Assert.That(c.Compatible, Is.True);
    }

    [Test]
    public void PartOfLibtorchReportsExactlyWhatTheOtherPartsProvide()
    {
        // The layout of the libtorch zip: libtorch/build-version beside libtorch/lib.
        var dir = LibFolderWithOnlyC10("build-version", "2.10.0+test\n");
        var c = LibTorchCompatibility.Check(ShimPath, dir);
        var c10 = ElfSymbols.Exports(Path.Combine(dir, "libc10.so")).ToHashSet();
        Assert.That(c.Missing, Does.Contain(IndexSelectCall));
        Assert.That(c.Missing.Where(c10.Contains), Is.Empty, "a symbol libc10 exports is not missing");
        var found = c.Required - c.Missing.Count;
        Assert.That(found, Is.GreaterThan(0), "the shim does import from c10");
        Assert.That(c.TorchVersion, Is.EqualTo("2.10.0+test"));
        Assert.That(c.Compatible, Is.False);
    }

    [Test]
    public void ReadsPyTorchsVersionBesideTorchLib()
    {
        // site-packages/torch/{version.py, lib/}: the layout the external route loads from.
        var lib = LibFolderWithOnlyC10("version.py",
            "from typing import Optional\n\n__all__ = ['__version__']\n__version__ = '2.11.0+cu128'\ndebug = False\ncuda: Optional[str] = '12.8'\n");
        Assert.That(LibTorchCompatibility.Check(ShimPath, lib).TorchVersion, Is.EqualTo("2.11.0+cu128"));
    }

    /// <summary>root/lib holding only libc10.so, with <paramref name="versionFile"/> in root; returns root/lib.</summary>
    static string LibFolderWithOnlyC10(string versionFile, string versionText)
    {
        var root = TestPaths.TempDir("qwen35-libtorch-part");
        var lib = Directory.CreateDirectory(Path.Combine(root, "lib")).FullName;
        File.Copy(Path.Combine(NativeDir, "libc10.so"), Path.Combine(lib, "libc10.so"));
        File.WriteAllText(Path.Combine(root, versionFile), versionText);
        return lib;
    }

    [TestCase("_ZN2at4_ops12index_select4callERKNS_6TensorElS4_", true)]
    [TestCase("_ZNK2at10TensorBase4sizeEl", true)]                    // const member function
    [TestCase("_ZN3c10lsERSoRKNS_6IValueE", true)]                    // operator<< in c10
    [TestCase("_ZTVN5torch8autograd12AutogradMetaE", true)]           // vtable
    [TestCase("_ZNSt6thread6_StateD2Ev", false)]                      // libstdc++
    [TestCase("memcpy", false)]
    [TestCase("THSTensor_index_select", false)]
    public void RecognisesLibtorchNamespaces(string symbol, bool expected) =>
        Assert.That(LibTorchCompatibility.IsLibTorchSymbol(symbol), Is.EqualTo(expected));

    [Test]
    public void BadFilesAreNamed()
    {
        var dir = TestPaths.TempDir("qwen35-elf");
        var text = Path.Combine(dir, "notes.so");
        File.WriteAllText(text, "not a library");
        Assert.That(() => ElfSymbols.Exports(text), Throws.InstanceOf<InvalidDataException>()
            .With.Message.Contains(text).And.Message.Contains("not an ELF file"));
        var truncated = Path.Combine(dir, "truncated.so");
        File.WriteAllBytes(truncated, File.ReadAllBytes(ShimPath)[..4096]);
        Assert.That(() => ElfSymbols.Imports(truncated), Throws.InstanceOf<InvalidDataException>()
            .With.Message.Contains(truncated).And.Message.Contains("outside the file"));
        File.Delete(truncated);
        Assert.That(() => LibTorchCompatibility.Check(ShimPath, dir), Throws.InstanceOf<InvalidDataException>()
            .With.Message.Contains("no shared libraries"), "the folder's only .so is not an ELF library");
    }
}
