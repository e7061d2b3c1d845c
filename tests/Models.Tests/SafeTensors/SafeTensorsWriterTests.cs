using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using Qwen35.Models.SafeTensors;
using Qwen35.Tests;
using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Models.Tests.SafeTensors;

public class SafeTensorsWriterTests
{
    /// <summary>A small tensor of <paramref name="type"/> with awkward values (negative zero, inf, NaN for floats).</summary>
    static Tensor Sample(ScalarType type, long seed)
    {
        var generator = new Generator((ulong)seed);
        using var scope = NewDisposeScope();
        Tensor t = type switch
        {
            ScalarType.Bool => randint(0, 2, [3, 5], generator: generator).to(ScalarType.Bool),
            ScalarType.Byte => randint(0, 256, [3, 5], generator: generator).to(type),
            ScalarType.Int8 or ScalarType.Int16 or ScalarType.Int32 => randint(-100, 100, [3, 5], generator: generator).to(type),
            ScalarType.Int64 => randint(-100, 100, [3, 5], generator: generator).mul(1L << 40).to(type),
            _ => cat([randn([14], generator: generator), tensor(new[] { -0f, float.PositiveInfinity, float.NaN })]).reshape(1, 17).to(type),
        };
        return t.MoveToOuterDisposeScope();
    }

    static byte[] Bytes(Tensor t) => t.contiguous().bytes.ToArray();

    [TestCase(ScalarType.BFloat16)]
    [TestCase(ScalarType.Float16)]
    [TestCase(ScalarType.Float32)]
    [TestCase(ScalarType.Float64)]
    [TestCase(ScalarType.Int64)]
    [TestCase(ScalarType.Int32)]
    [TestCase(ScalarType.Int16)]
    [TestCase(ScalarType.Int8)]
    [TestCase(ScalarType.Byte)]
    [TestCase(ScalarType.Bool)]
    public void EveryDtypeRoundTripsBitExactly(ScalarType type)
    {
        var path = Path.Combine(TestPaths.TempDir(), "one.safetensors");
        using var original = Sample(type, 7);
        SafeTensorsWriter.Write(path, [("x", original)]);

        using var file = SafeTensorsFile.Open(path);
        Assert.That(file.Metadata, Is.EqualTo(new Dictionary<string, string> { ["format"] = "pt" }), "default metadata");
        Assert.That(file.Tensors["x"].Dtype, Is.EqualTo(SafeTensorsDtype.FromScalarType(type)));
        using var back = file.Load("x");
        Assert.That(back.dtype, Is.EqualTo(type));
        Assert.That(back.shape, Is.EqualTo(original.shape));
        Assert.That(Bytes(back), Is.EqualTo(Bytes(original)));
    }

    [Test]
    public void MixedDtypeFileRoundTripsAndHeaderIsCanonical()
    {
        var path = Path.Combine(TestPaths.TempDir(), "mixed.safetensors");
        var types = new[] { ScalarType.BFloat16, ScalarType.Float32, ScalarType.Bool, ScalarType.Int64, ScalarType.Float16, ScalarType.Byte };
        // Names in non-sorted order; a bool (15 bytes) placed between wider dtypes forces unaligned offsets.
        var tensors = types.Select((t, i) => ($"t{(i * 7) % 6}.{t}", Sample(t, i))).ToList();
        tensors.Add(("scalar", tensor(2.5f)));
        tensors.Add(("empty", zeros(0, 3, dtype: ScalarType.BFloat16)));
        SafeTensorsWriter.Write(path, tensors, new Dictionary<string, string> { ["source"] = "test" });

        var raw = File.ReadAllBytes(path);
        var headerLength = (int)BinaryPrimitives.ReadUInt64LittleEndian(raw);
        Assert.That(headerLength % 8, Is.EqualTo(0), "header padded to a multiple of 8");
        var headerText = Encoding.UTF8.GetString(raw, 8, headerLength);
        Assert.That(headerText.TrimEnd(' '), Does.EndWith("}"), "padding is spaces");
        using var header = JsonDocument.Parse(headerText);
        var keys = header.RootElement.EnumerateObject().Select(p => p.Name).ToList();
        Assert.That(keys[0], Is.EqualTo("__metadata__"));
        Assert.That(keys.Skip(1), Is.EqualTo(tensors.Select(t => t.Item1).Order(StringComparer.Ordinal)));
        Assert.That(header.RootElement.GetProperty("__metadata__").GetProperty("format").GetString(), Is.EqualTo("pt"));

        using var file = SafeTensorsFile.Open(path);
        Assert.That(file.Metadata["source"], Is.EqualTo("test"));
        // Data is laid out in the same sorted order, contiguously to the end of the file.
        var byOffset = file.Tensors.Values.OrderBy(t => t.DataStart).ThenBy(t => t.DataEnd).Select(t => t.Name);
        Assert.That(byOffset, Is.EqualTo(keys.Skip(1)));
        Assert.That(file.DataOffset + file.Tensors.Values.Max(t => t.DataEnd), Is.EqualTo(raw.Length));
        foreach (var (name, original) in tensors)
        {
            using var back = file.Load(name);
            Assert.That(back.dtype, Is.EqualTo(original.dtype), name);
            Assert.That(back.shape, Is.EqualTo(original.shape), name);
            Assert.That(Bytes(back), Is.EqualTo(Bytes(original)), name);
        }
        foreach (var (_, t) in tensors) t.Dispose();
    }

    [Test]
    public void WriterTakesNonContiguousAndGradTensors()
    {
        var path = Path.Combine(TestPaths.TempDir(), "views.safetensors");
        using var parameter = arange(12, dtype: ScalarType.Float32).reshape(3, 4).requires_grad_(true);
        using var transposed = arange(12, dtype: ScalarType.Float32).reshape(3, 4).t();
        SafeTensorsWriter.Write(path, [("p", parameter), ("t", transposed)]);
        using var file = SafeTensorsFile.Open(path);
        using var p = file.Load("p");
        using var t = file.Load("t");
        Assert.That(p.data<float>().ToArray(), Is.EqualTo(Enumerable.Range(0, 12).Select(i => (float)i)));
        Assert.That(t.shape, Is.EqualTo(new long[] { 4, 3 }));
        Assert.That(t.data<float>().ToArray(), Is.EqualTo(new float[] { 0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11 }));
    }

    [Test]
    public void GoldenModelRewritesToTheIdenticalFile()
    {
        var golden = Path.Combine(TestPaths.GoldenTiny, "model.safetensors");
        var path = Path.Combine(TestPaths.TempDir(), "model.safetensors");
        using (var file = SafeTensorsFile.Open(golden))
        {
            var tensors = file.Tensors.Keys.Select(k => (k, file.Load(k))).ToList();
            SafeTensorsWriter.Write(path, tensors, file.Metadata);
            foreach (var (_, t) in tensors) t.Dispose();
        }
        // The golden file uses the same canonical layout (README), so the rewrite must match it byte for byte.
        ByteAssert.Same(File.ReadAllBytes(path), File.ReadAllBytes(golden), "rewritten golden model");

        using var a = SafeTensorsFile.Open(golden);
        using var b = SafeTensorsFile.Open(path);
        Assert.That(b.Tensors.Keys, Is.EquivalentTo(a.Tensors.Keys));
        foreach (var name in a.Tensors.Keys)
        {
            using var x = a.Load(name);
            using var y = b.Load(name);
            ByteAssert.Same(Bytes(y), Bytes(x), name);
        }
    }

    [Test]
    public void ShardedRoundTripWritesIndexAndLoadsEveryTensor()
    {
        var dir = TestPaths.TempDir();
        // 5 F32 tensors of 400 bytes, shard limit 1000 bytes -> 2 per shard -> 3 shards.
        var tensors = Enumerable.Range(0, 5).Select(i => ($"layer.{i}.w", randn(10, 10))).ToList();
        File.WriteAllText(Path.Combine(dir, "model.safetensors"), "stale");
        var written = SafeTensorsWriter.WriteSharded(dir, tensors, maxShardBytes: 1000);

        Assert.That(written.Select(Path.GetFileName), Is.EqualTo(new[]
        {
            "model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors",
            "model.safetensors.index.json",
        }));
        Assert.That(File.Exists(Path.Combine(dir, "model.safetensors")), Is.False, "stale single file removed");
        using (var index = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "model.safetensors.index.json"))))
        {
            Assert.That(index.RootElement.GetProperty("metadata").GetProperty("total_size").GetInt64(), Is.EqualTo(2000));
            var map = index.RootElement.GetProperty("weight_map").EnumerateObject().ToList();
            Assert.That(map.Select(p => p.Name), Is.EqualTo(tensors.Select(t => t.Item1).Order(StringComparer.Ordinal)));
            Assert.That(map.Select(p => p.Value.GetString()), Is.EqualTo(new[]
            {
                "model-00001-of-00003.safetensors", "model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
                "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors",
            }));
        }

        using var checkpoint = SafeTensorsCheckpoint.Open(dir);
        Assert.That(checkpoint.Names, Is.EqualTo(tensors.Select(t => t.Item1)));
        Assert.That(checkpoint.Files, Has.Count.EqualTo(3));
        foreach (var (name, original) in tensors)
        {
            using var back = checkpoint.Load(name);
            Assert.That(Bytes(back), Is.EqualTo(Bytes(original)), name);
            original.Dispose();
        }
    }

    [Test]
    public void ShardedWriteThatFitsInOneShardWritesModelSafetensors()
    {
        var dir = TestPaths.TempDir();
        File.WriteAllText(Path.Combine(dir, "model.safetensors.index.json"), "{}");
        using var a = ones(4);
        using var big = ones(100);
        var written = SafeTensorsWriter.WriteSharded(dir, [("a", a), ("big", big)], maxShardBytes: 1 << 20);
        Assert.That(written, Is.EqualTo(new[] { Path.Combine(dir, "model.safetensors") }));
        Assert.That(File.Exists(Path.Combine(dir, "model.safetensors.index.json")), Is.False, "stale index removed");
        using var checkpoint = SafeTensorsCheckpoint.Open(dir);
        Assert.That(checkpoint.Names, Is.EqualTo(new[] { "a", "big" }));
    }

    [Test]
    public void OversizedTensorGetsItsOwnShard()
    {
        var dir = TestPaths.TempDir();
        using var small1 = ones(10);
        using var huge = ones(1000);
        using var small2 = ones(10);
        SafeTensorsWriter.WriteSharded(dir, [("a", small1), ("b", huge), ("c", small2)], maxShardBytes: 100);
        using var checkpoint = SafeTensorsCheckpoint.Open(dir);
        Assert.That(checkpoint.Files.Select(Path.GetFileName), Is.EqualTo(new[]
            { "model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors" }));
        using var b = checkpoint.Load("b");
        Assert.That(b.sum().item<float>(), Is.EqualTo(1000f));
    }

    [Test]
    public void WriterRefusesDuplicateNamesAndLeavesNoFile()
    {
        var dir = TestPaths.TempDir();
        var path = Path.Combine(dir, "dup.safetensors");
        using var a = ones(2);
        Assert.That(() => SafeTensorsWriter.Write(path, [("x", a), ("x", a)]), Throws.ArgumentException.With.Message.Contains("'x'"));
        Assert.That(Directory.GetFiles(dir), Is.Empty);
    }
}
