using System.Text;
using Qwen35.Models.SafeTensors;
using Qwen35.Tests;

namespace Qwen35.Models.Tests.SafeTensors;

/// <summary>
/// Truncated and forged files: each must fail at Open with a SafeTensorsFormatException naming the file and the
/// tensor/field at fault - never a crash, a hang, or a read outside the file.
/// </summary>
public class SafeTensorsHostileFileTests
{
    const string Ok = "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}";

    static SafeTensorsFormatException OpenFails(string path)
    {
        var e = Assert.Throws<SafeTensorsFormatException>(() => SafeTensorsFile.Open(path).Dispose())!;
        Assert.That(e.Message, Does.StartWith(path + ": "), "message names the file");
        Assert.That(e, Is.InstanceOf<UserInputException>(), "a damaged file is bad input (exit 2)");
        return e;
    }

    /// <summary>(header JSON, data bytes, fragments the message must contain).</summary>
    static IEnumerable<TestCaseData> ForgedHeaders()
    {
        TestCaseData Case(string name, string json, int dataBytes, params string[] fragments) =>
            new TestCaseData(json, dataBytes, fragments).SetName(name);

        yield return Case("InvalidJson", "{\"w\":{\"dtype\":", 8, "not valid UTF-8 JSON");
        yield return Case("HeaderIsArray", "[1,2]", 8, "must be a JSON object", "Array");
        yield return Case("HeaderIsNumber", "42", 8, "must be a JSON object");
        yield return Case("EntryNotObject", """{"w":[1]}""", 8, "tensor 'w' must be an object");
        yield return Case("MissingDtype", """{"w":{"shape":[2],"data_offsets":[0,8]}}""", 8, "'w'", "no 'dtype'");
        yield return Case("MissingShape", """{"w":{"dtype":"F32","data_offsets":[0,8]}}""", 8, "'w'", "no 'shape'");
        yield return Case("MissingOffsets", """{"w":{"dtype":"F32","shape":[2]}}""", 8, "'w'", "no 'data_offsets'");
        yield return Case("DtypeNotString", """{"w":{"dtype":4,"shape":[2],"data_offsets":[0,8]}}""", 8, "'w'", "'dtype'");
        yield return Case("UnknownDtype", """{"w":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}}""", 8, "'w'", "F8_E4M3");
        yield return Case("LowercaseDtype", """{"w":{"dtype":"f32","shape":[2],"data_offsets":[0,8]}}""", 8, "'w'", "'f32'");
        yield return Case("NegativeShape", """{"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}""", 8, "'w'", "'shape'[0]", "-2");
        yield return Case("FractionalShape", """{"w":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}}""", 8, "'w'", "'shape'[0]");
        yield return Case("StringShape", """{"w":{"dtype":"F32","shape":[1,"2"],"data_offsets":[0,8]}}""", 8, "'w'", "'shape'[1]");
        yield return Case("ShapeNotArray", """{"w":{"dtype":"F32","shape":2,"data_offsets":[0,8]}}""", 8, "'w'", "'shape' must be an array");
        yield return Case("OffsetsWrongCount", """{"w":{"dtype":"F32","shape":[2],"data_offsets":[0]}}""", 8, "'w'", "exactly 2");
        yield return Case("NegativeOffset", """{"w":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}}""", 8, "'w'", "'data_offsets'[0]");
        yield return Case("OffsetsReversed", """{"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}""", 8, "'w'", "after end");
        yield return Case("OffsetsBeyondData", """{"w":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}""", 8, "'w'", "beyond the 8-byte data section");
        yield return Case("OffsetBeyondInt64", """{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,99999999999999999999]}}""", 8, "'w'", "'data_offsets'[1]");
        yield return Case("ByteSizeMismatch", """{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}""", 16, "'w'", "span 8 bytes", "needs 12");
        yield return Case("ShapeProductOverflow", """{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}""", 8, "'w'", "overflows");
        yield return Case("ByteCountOverflow", """{"w":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,8]}}""", 8, "'w'", "overflows");
        yield return Case("Overlap", """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""", 12, "'a'", "'b'", "overlap");
        yield return Case("DuplicateTensor", """{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""", 8, "'w'", "twice");
        yield return Case("MetadataNotObject", """{"__metadata__":"pt",""" + Ok + "}", 8, "'__metadata__'", "object of strings");
        yield return Case("MetadataValueNotString", """{"__metadata__":{"format":"pt","step":3},""" + Ok + "}", 8, "'__metadata__.step'", "must be a string");
        yield return Case("MetadataValueNull", """{"__metadata__":{"format":null},""" + Ok + "}", 8, "'__metadata__.format'");
    }

    [TestCaseSource(nameof(ForgedHeaders))]
    public void ForgedHeaderIsRejected(string json, int dataBytes, string[] fragments)
    {
        var path = SpecFile.Write(TestPaths.TempDir(), json, new byte[dataBytes]);
        var e = OpenFails(path);
        foreach (var fragment in fragments) Assert.That(e.Message, Does.Contain(fragment));
    }

    [Test]
    public void ValidBaselineOfTheForgedCasesOpens()
    {
        // The forged cases differ from this file in one field each, so the failures above are caused by that field.
        var path = SpecFile.Write(TestPaths.TempDir(), "{\"__metadata__\":{\"format\":\"pt\"}," + Ok + "}", new byte[8]);
        using var file = SafeTensorsFile.Open(path);
        Assert.That(file.Tensors["w"].Shape, Is.EqualTo(new long[] { 2 }));
    }

    [TestCase(0)]
    [TestCase(7)]
    public void FileShorterThanLengthFieldIsRejected(int length)
    {
        var path = Path.Combine(TestPaths.TempDir(), "short.safetensors");
        File.WriteAllBytes(path, new byte[length]);
        Assert.That(OpenFails(path).Message, Does.Contain($"file is {length} bytes"));
    }

    [Test]
    public void HeaderLengthLargerThanFileIsRejected()
    {
        var path = SpecFile.WriteRaw(TestPaths.TempDir(), SpecFile.LengthField(64), Encoding.UTF8.GetBytes("{}      "), []);
        Assert.That(OpenFails(path).Message, Does.Contain("header length 64 is larger than the 8 bytes"));
    }

    [TestCase(ulong.MaxValue)]
    [TestCase(200UL * 1024 * 1024)]
    public void AbsurdHeaderLengthIsRejectedWithoutAllocating(ulong length)
    {
        var path = SpecFile.WriteRaw(TestPaths.TempDir(), SpecFile.LengthField(length), Encoding.UTF8.GetBytes("{}      "), []);
        Assert.That(OpenFails(path).Message, Does.Contain($"header length {length} exceeds"));
    }

    [Test]
    public void InvalidUtf8InHeaderIsRejected()
    {
        // {"<FF FE>":{}} padded: structurally valid JSON whose key is not UTF-8.
        byte[] header = [.. "{\""u8, 0xFF, 0xFE, .. "\":{}}  "u8];
        var path = SpecFile.WriteRaw(TestPaths.TempDir(), SpecFile.LengthField((ulong)header.Length), header, []);
        Assert.That(OpenFails(path).Message, Does.Contain("not valid UTF-8 JSON"));
    }

    [Test]
    public void TruncatedCopiesOfAValidFileAreRejected()
    {
        var dir = TestPaths.TempDir();
        var golden = File.ReadAllBytes(Path.Combine(TestPaths.GoldenTiny, "model.safetensors"));
        // Cut inside the length field, inside the header, and inside the data (the last tensor loses its tail).
        foreach (var (cut, fragment) in new[] { (5, "shorter than the 8-byte"), (4000, "is larger than the"), (golden.Length - 3, "beyond the") })
        {
            var path = Path.Combine(dir, $"cut{cut}.safetensors");
            File.WriteAllBytes(path, golden[..cut]);
            Assert.That(OpenFails(path).Message, Does.Contain(fragment), $"cut at {cut}");
        }
    }
}
