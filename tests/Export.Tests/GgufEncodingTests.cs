using Qwen35.Export.Gguf;
using static TorchSharp.torch;

namespace Qwen35.Export.Tests;

/// <summary>The F16/BF16 encoders against torch's conversions (round to nearest even) and hand-worked bit patterns.</summary>
public class GgufEncodingTests
{
    [Test]
    public void Bf16_rounds_to_nearest_even_and_keeps_nan()
    {
        Assert.Multiple(() =>
        {
            Assert.That(GgufEncoding.ToBf16(1f), Is.EqualTo(0x3F80));
            Assert.That(GgufEncoding.ToBf16(BitConverter.UInt32BitsToSingle(0x3F808000)), Is.EqualTo(0x3F80), "tie, even below");
            Assert.That(GgufEncoding.ToBf16(BitConverter.UInt32BitsToSingle(0x3F818000)), Is.EqualTo(0x3F82), "tie, even above");
            Assert.That(GgufEncoding.ToBf16(BitConverter.UInt32BitsToSingle(0x3F808001)), Is.EqualTo(0x3F81), "above the tie");
            Assert.That(GgufEncoding.ToBf16(-2f), Is.EqualTo(0xC000));
            Assert.That(GgufEncoding.ToBf16(float.PositiveInfinity), Is.EqualTo(0x7F80));
            Assert.That(GgufEncoding.ToBf16(BitConverter.UInt32BitsToSingle(0x7F800001)) & 0x7FFF, Is.GreaterThan(0x7F80), "a NaN stays a NaN");
        });
    }

    [TestCase(GgmlType.F16)]
    [TestCase(GgmlType.Bf16)]
    public void Encoding_matches_torchs_conversion_bit_for_bit(GgmlType type)
    {
        using var scope = NewDisposeScope();
        var values = cat([randn(10000, generator: new TorchSharp.torch.Generator(7)) * 3, tensor(new[] { 0f, -0f, 65504f, 70000f, 1e-8f, -1e-5f })]);
        var floats = values.data<float>().ToArray();
        var bytes = new byte[floats.Length * 2];
        Assert.That(GgufEncoding.Encode(floats, type, bytes), Is.EqualTo(bytes.Length));
        var torchType = type == GgmlType.F16 ? ScalarType.Float16 : ScalarType.BFloat16;
        var expected = values.to(torchType).to(ScalarType.Float32).data<float>().ToArray();
        var decoded = Enumerable.Range(0, floats.Length).Select(i =>
        {
            var bits = BitConverter.ToUInt16(bytes, 2 * i);
            return type == GgmlType.F16 ? (float)BitConverter.UInt16BitsToHalf(bits) : BitConverter.UInt32BitsToSingle((uint)bits << 16);
        }).ToArray();
        Assert.That(decoded, Is.EqualTo(expected));
    }
}
