using Qwen35.Models.SafeTensors;
using Qwen35.Tests;
using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Models.Tests.SafeTensors;

public class SafeTensorsReaderTests
{
    static string GoldenModel => Path.Combine(TestPaths.GoldenTiny, "model.safetensors");

    [Test]
    public void GoldenModelHeaderMatchesReadme()
    {
        using var file = SafeTensorsFile.Open(GoldenModel);
        Assert.That(file.Tensors, Has.Count.EqualTo(92));
        Assert.That(file.Tensors.Values.Select(t => t.Dtype).Distinct(), Is.EqualTo(new[] { "F32" }));
        Assert.That(file.Metadata, Is.EqualTo(new Dictionary<string, string> { ["format"] = "pt" }));
        Assert.That(file.Tensors["model.language_model.embed_tokens.weight"].Shape, Is.EqualTo(new long[] { 512, 64 }));
        Assert.That(file.Tensors["model.language_model.layers.0.linear_attn.conv1d.weight"].Shape, Is.EqualTo(new long[] { 128, 1, 4 }));
        Assert.That(file.Tensors["model.language_model.layers.3.self_attn.k_proj.weight"].Shape, Is.EqualTo(new long[] { 32, 64 }));
        Assert.That(file.Tensors["model.visual.patch_embed.proj.weight"].Shape, Is.EqualTo(new long[] { 16, 3, 2, 2, 2 }));
        Assert.That(file.Tensors["lm_head.weight"].Shape, Is.EqualTo(new long[] { 512, 64 }));
        Assert.That(file.Tensors.Keys.Count(k => k.StartsWith("mtp.", StringComparison.Ordinal)), Is.EqualTo(15));
    }

    [Test]
    public void GoldenModelLoadsTheBytesAtItsOffsets()
    {
        // Compare Load against the raw little-endian floats at 8 + headerLen + data_offsets, decoded independently.
        var bytes = File.ReadAllBytes(GoldenModel);
        using var file = SafeTensorsFile.Open(GoldenModel);
        foreach (var name in new[] { "model.language_model.layers.0.linear_attn.A_log", "model.language_model.norm.weight", "lm_head.weight" })
        {
            var info = file.Tensors[name];
            var start = (int)(file.DataOffset + info.DataStart);
            var expected = Enumerable.Range(0, (int)info.NumElements)
                .Select(i => BitConverter.ToSingle(bytes, start + 4 * i)).ToArray();
            using var tensor = file.Load(name);
            Assert.That(tensor.dtype, Is.EqualTo(ScalarType.Float32));
            Assert.That(tensor.shape, Is.EqualTo(info.Shape));
            Assert.That(tensor.data<float>().ToArray(), Is.EqualTo(expected), name);
        }
    }

    [Test]
    public void MixedDtypesAndUnalignedOffsetsLoadBitExactly()
    {
        var dir = TestPaths.TempDir();
        // bf16 [3] (6 bytes) then F32 [2] at data offset 6 -> absolute offset not a multiple of 4 (unaligned path),
        // then I64 [2] at 14, also unaligned, then U8 [1].
        var data = SpecFile.BFloat16(1f, -2f, 0.5f).Concat(SpecFile.Floats(3.25f, -7.5f)).Concat(SpecFile.Longs(-5, 1L << 40)).Append((byte)200).ToArray();
        var header = """
            {"__metadata__":{"format":"pt"},
             "a_bf16":{"dtype":"BF16","shape":[3],"data_offsets":[0,6]},
             "b_f32":{"dtype":"F32","shape":[2,1],"data_offsets":[6,14]},
             "c_i64":{"dtype":"I64","shape":[2],"data_offsets":[14,30]},
             "d_u8":{"dtype":"U8","shape":[],"data_offsets":[30,31]}}
            """;
        var path = SpecFile.Write(dir, header, data);
        using var file = SafeTensorsFile.Open(path);
        Assert.That(file.DataOffset % 8, Is.EqualTo(0));

        using var a = file.Load("a_bf16");
        Assert.That(a.dtype, Is.EqualTo(ScalarType.BFloat16));
        Assert.That(a.to(ScalarType.Float32).data<float>().ToArray(), Is.EqualTo(new[] { 1f, -2f, 0.5f }));
        using var b = file.Load("b_f32");
        Assert.That(b.shape, Is.EqualTo(new long[] { 2, 1 }));
        Assert.That(b.data<float>().ToArray(), Is.EqualTo(new[] { 3.25f, -7.5f }));
        using var c = file.Load("c_i64");
        Assert.That(c.data<long>().ToArray(), Is.EqualTo(new[] { -5L, 1L << 40 }));
        using var d = file.Load("d_u8");
        Assert.That(d.shape, Is.Empty);
        Assert.That(d.item<byte>(), Is.EqualTo(200));
    }

    [Test]
    public void LoadedViewIsCopyOnWriteAndOutlivesTheFile()
    {
        var dir = TestPaths.TempDir();
        var path = SpecFile.Write(dir, """{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}""", SpecFile.Floats(1, 2, 3, 4));
        var before = File.ReadAllBytes(path);
        Tensor view;
        using (var file = SafeTensorsFile.Open(path))
            view = file.Load("w");
        using (view)
        {
            // Still readable after the file object is disposed (libtorch keeps the mapping alive).
            Assert.That(view.data<float>().ToArray(), Is.EqualTo(new[] { 1f, 2f, 3f, 4f }));
            view.mul_(10);
            Assert.That(view.data<float>().ToArray(), Is.EqualTo(new[] { 10f, 20f, 30f, 40f }));
        }
        Assert.That(File.ReadAllBytes(path), Is.EqualTo(before), "writing into a loaded tensor must never change the file");
    }

    [Test]
    public void CopyIntoBf16ParameterKeepsBits()
    {
        var dir = TestPaths.TempDir();
        var path = SpecFile.Write(dir, """{"w":{"dtype":"BF16","shape":[2,2],"data_offsets":[0,8]}}""", SpecFile.BFloat16(0.25f, -1.5f, 3f, 96f));
        using var file = SafeTensorsFile.Open(path);
        using var parameter = zeros(2, 2, dtype: ScalarType.BFloat16);
        using (var loaded = file.Load("w")) parameter.copy_(loaded);
        Assert.That(parameter.to(ScalarType.Float32).data<float>().ToArray(), Is.EqualTo(new[] { 0.25f, -1.5f, 3f, 96f }));
    }

    [Test]
    public void MappingSurvivesTheCallersDisposeScope()
    {
        // The first Load creates the dtype's mapping inside the caller's scope; it must belong to the file, not the
        // scope, or the next Load (after the scope ends) would use a freed tensor.
        using var file = SafeTensorsFile.Open(GoldenModel);
        float first;
        using (NewDisposeScope())
            first = file.Load("model.language_model.norm.weight")[0].item<float>();
        using var again = file.Load("model.language_model.norm.weight");
        using var other = file.Load("lm_head.weight");
        Assert.That(again[0].item<float>(), Is.EqualTo(first));
        Assert.That(other.shape, Is.EqualTo(new long[] { 512, 64 }));
    }
}
