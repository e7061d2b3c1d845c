using Qwen35.Models.SafeTensors;
using Qwen35.Tests;
using static TorchSharp.torch;

namespace Qwen35.Models.Tests.SafeTensors;

public class SafeTensorsCheckpointTests
{
    [Test]
    public void FolderWithModelSafetensorsOpensTheSingleFile()
    {
        using var checkpoint = SafeTensorsCheckpoint.Open(TestPaths.GoldenTiny);
        Assert.That(checkpoint.Names, Has.Count.EqualTo(92));
        Assert.That(checkpoint.Files, Is.EqualTo(new[] { Path.Combine(TestPaths.GoldenTiny, "model.safetensors") }));
        Assert.That(checkpoint.Info("model.language_model.layers.0.mlp.down_proj.weight").Shape, Is.EqualTo(new long[] { 64, 128 }));
    }

    [Test]
    public void GoldenExpectedFileOpensByPath()
    {
        using var expected = SafeTensorsCheckpoint.Open(Path.Combine(TestPaths.GoldenTiny, "expected.safetensors"));
        Assert.That(expected.Names, Does.Contain("seq2.logits").And.Contain("lora.seq0.loss"));
        Assert.That(expected.Info("seq1.logits").Shape, Is.EqualTo(new long[] { 70, 512 }));
        using var losses = expected.Load("losses");
        // README: losses = [6.31, 6.54, 6.54] (2 decimals).
        Assert.That(losses.data<float>().ToArray(), Is.EqualTo(new[] { 6.31f, 6.54f, 6.54f }).Within(0.006f));
    }

    /// <summary>A folder with two valid shards (a,b in s1; c in s2) and an index written from <paramref name="weightMapJson"/>.</summary>
    static string ShardedFolder(string weightMapJson)
    {
        var dir = TestPaths.TempDir();
        SpecFile.Write(dir, """{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""",
            SpecFile.Floats(1, 2), name: "s1.safetensors");
        SpecFile.Write(dir, """{"c":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}""", SpecFile.Longs(3), name: "s2.safetensors");
        File.WriteAllText(Path.Combine(dir, SafeTensorsCheckpoint.IndexFileName), weightMapJson);
        return dir;
    }

    [Test]
    public void IndexedFolderOpensShardsLazily()
    {
        var dir = ShardedFolder("""{"metadata":{"total_size":16},"weight_map":{"c":"s2.safetensors","a":"s1.safetensors","b":"s1.safetensors"}}""");
        using var checkpoint = SafeTensorsCheckpoint.Open(dir);
        Assert.That(checkpoint.Names, Is.EqualTo(new[] { "a", "b", "c" }));
        // Shard 2 is broken after Open: a lazy checkpoint still serves shard 1, and fails only when shard 2 is touched.
        File.WriteAllBytes(Path.Combine(dir, "s2.safetensors"), [1, 2, 3]);
        using (var b = checkpoint.Load("b")) Assert.That(b.item<float>(), Is.EqualTo(2f));
        Assert.That(() => checkpoint.Load("c"), Throws.TypeOf<SafeTensorsFormatException>().With.Message.Contains("s2.safetensors"));
        Assert.That(() => checkpoint.Load("zzz"), Throws.TypeOf<KeyNotFoundException>().With.Message.Contains("'zzz'"));
    }

    [Test]
    public void IndexFileCanBeOpenedDirectly()
    {
        var dir = ShardedFolder("""{"weight_map":{"a":"s1.safetensors","c":"s2.safetensors"}}""");
        using var checkpoint = SafeTensorsCheckpoint.Open(Path.Combine(dir, SafeTensorsCheckpoint.IndexFileName));
        using var c = checkpoint.Load("c");
        Assert.That(c.item<long>(), Is.EqualTo(3L));
        Assert.That(checkpoint.Info("a").Dtype, Is.EqualTo("F32"));
    }

    [TestCase("""{"weight_map":{"a":"s1.safetensors","x":"missing.safetensors"}}""", "missing.safetensors", "does not exist")]
    [TestCase("""{"weight_map":{"a":"../s1.safetensors"}}""", "weight_map['a']", "outside")]
    [TestCase("""{"weight_map":{"a":"/etc/passwd"}}""", "weight_map['a']", "outside")]
    [TestCase("""{"weight_map":{"a":3}}""", "weight_map['a']", "Number")]
    [TestCase("""{"weight_map":[]}""", "weight_map", "object")]
    [TestCase("""{"metadata":{}}""", "weight_map", "object")]
    [TestCase("""{"weight_map":{"a":"s1.safetensors",""", "not valid JSON", "")]
    [TestCase("""{"weight_map":{"a":"s1.safetensors","a":"s2.safetensors"}}""", "'a'", "twice")]
    public void BrokenIndexIsRejectedAtOpen(string index, string fragment1, string fragment2)
    {
        var dir = ShardedFolder(index);
        var e = Assert.Throws<SafeTensorsFormatException>(() => SafeTensorsCheckpoint.Open(dir).Dispose())!;
        Assert.That(e.Message, Does.StartWith(Path.Combine(dir, SafeTensorsCheckpoint.IndexFileName)).And.Contain(fragment1).And.Contain(fragment2));
    }

    [Test]
    public void TensorMissingFromItsShardIsReportedWithBothFiles()
    {
        // The index places "c" in s1, which does not hold it.
        var dir = ShardedFolder("""{"weight_map":{"a":"s1.safetensors","c":"s1.safetensors"}}""");
        using var checkpoint = SafeTensorsCheckpoint.Open(dir);
        var e = Assert.Throws<SafeTensorsFormatException>(() => checkpoint.Load("a"))!;
        Assert.That(e.Message, Does.Contain(SafeTensorsCheckpoint.IndexFileName).And.Contain("'c'").And.Contain("s1.safetensors"));
    }

    [Test]
    public void FolderWithoutWeightsIsReported()
    {
        var dir = TestPaths.TempDir();
        Assert.That(() => SafeTensorsCheckpoint.Open(dir), Throws.TypeOf<UserInputException>().With.Message.Contains(dir));
        Assert.That(() => SafeTensorsCheckpoint.Open(Path.Combine(dir, "nope.safetensors")), Throws.TypeOf<UserInputException>());
    }
}
