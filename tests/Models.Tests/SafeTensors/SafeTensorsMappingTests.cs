using System.Globalization;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Qwen35.Models.SafeTensors;
using Qwen35.Tests;
using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Models.Tests.SafeTensors;

/// <summary>Checks that aligned loads really are views of a file mapping and that chunked paths handle many chunks.</summary>
public class SafeTensorsMappingTests
{
    /// <summary>Absolute address of the tensor's first byte (offset of its data from the null reference).</summary>
    static ulong Address(Tensor t) =>
        (ulong)(long)Unsafe.ByteOffset(ref Unsafe.NullRef<byte>(), ref MemoryMarshal.GetReference(t.bytes));

    /// <summary>"perms pathname" of the /proc/self/maps region holding <paramref name="address"/>, or null.</summary>
    static string? MappedFileAt(ulong address)
    {
        foreach (var line in File.ReadLines("/proc/self/maps"))
        {
            var parts = line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries);
            var range = parts[0].Split('-');
            var (lo, hi) = (ulong.Parse(range[0], NumberStyles.HexNumber), ulong.Parse(range[1], NumberStyles.HexNumber));
            if (address >= lo && address < hi) return parts[1] + " " + (parts.Length == 6 ? parts[5].Trim() : "");
        }
        return null;
    }

    [Test]
    public void AlignedLoadIsAViewOfThePrivateFileMapping()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("inspects /proc/self/maps, which only Linux has");
        var golden = Path.GetFullPath(Path.Combine(TestPaths.GoldenTiny, "model.safetensors"));
        using var file = SafeTensorsFile.Open(golden);
        using var first = file.Load("lm_head.weight");
        using var second = file.Load("lm_head.weight");
        Assert.That(Address(second), Is.EqualTo(Address(first)), "two loads share the mapping's memory (no copy)");
        // "p" = MAP_PRIVATE: copy-on-write, so writes through a loaded tensor never reach the file.
        Assert.That(MappedFileAt(Address(first)), Does.Match(@"^r.-p ").And.EndWith(" " + golden), "memory of a private mapping of the file");
        var info = file.Tensors["lm_head.weight"];
        using var other = file.Load("model.language_model.norm.weight");
        var otherInfo = file.Tensors["model.language_model.norm.weight"];
        Assert.That((long)(Address(other) - Address(first)), Is.EqualTo(otherInfo.DataStart - info.DataStart), "offsets within one mapping");
    }

    [Test]
    public void UnalignedLoadIsAPrivateCopy()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("inspects /proc/self/maps, which only Linux has");
        var path = SpecFile.Write(TestPaths.TempDir(), """{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"F32","shape":[1],"data_offsets":[1,5]}}""",
            [7, .. SpecFile.Floats(1.5f)]);
        using var file = SafeTensorsFile.Open(path);
        using var b = file.Load("b");
        Assert.That(b.item<float>(), Is.EqualTo(1.5f));
        Assert.That(MappedFileAt(Address(b)), Does.Not.EndWith(Path.GetFullPath(path)));
    }

    [Test]
    public void MultiChunkTensorsRoundTripThroughUnalignedAndAlignedPaths()
    {
        // 42 MB of F32 spans three 16 MB chunks (the last partial) in the writer; placed after a 1-byte tensor its
        // offset is odd, so the reader takes the chunked copy path too. A second copy is aligned (mapped).
        var elements = 10_500_001L;
        using var big = arange(elements, dtype: ScalarType.Float32);
        using var flag = tensor(new byte[] { 1 });
        var path = Path.Combine(TestPaths.TempDir(), "big.safetensors");
        SafeTensorsWriter.Write(path, [("a.flag", flag), ("b.unaligned", big), ("0.aligned", big)]);

        using var file = SafeTensorsFile.Open(path);
        Assert.That((file.DataOffset + file.Tensors["b.unaligned"].DataStart) % 4, Is.Not.EqualTo(0), "test needs an unaligned tensor");
        foreach (var name in new[] { "b.unaligned", "0.aligned" })
        {
            using var back = file.Load(name);
            Assert.That(back.shape, Is.EqualTo(new[] { elements }));
            Assert.That(back.eq(big).all().item<bool>(), Is.True, name);
        }
    }
}
