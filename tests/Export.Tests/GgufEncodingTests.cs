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

    [Test]
    public void Q8_0_block_by_hand_and_the_F16_fallback_for_rows_not_a_multiple_of_32()
    {
        // x_j = j − 15 for j < 32: amax 16, d = 16/127, q_j = round((j − 15) · 127/16) half away from zero.
        var x = Enumerable.Range(0, 32).Select(j => j - 15f).ToArray();
        var bytes = new byte[34];
        Assert.That(GgufEncoding.Encode(x, GgmlType.Q8_0, bytes), Is.EqualTo(34));
        Assert.That(BitConverter.UInt16BitsToHalf(BitConverter.ToUInt16(bytes, 0)), Is.EqualTo((Half)(16f / 127f)));
        var q = bytes[2..].Select(b => (int)(sbyte)b).ToArray();
        Assert.That(q[0], Is.EqualTo(-119)); // −15 · 7.9375 = −119.06
        Assert.That(q[15], Is.EqualTo(0));
        Assert.That(q[17], Is.EqualTo(16));  // 2 · 7.9375 = 15.875
        Assert.That(q[31], Is.EqualTo(127));
        Assert.That(q[16], Is.EqualTo(8));   // 7.9375
        var zero = new byte[34];
        GgufEncoding.Encode(new float[32], GgmlType.Q8_0, zero);
        Assert.That(zero, Is.All.EqualTo(0), "an all-zero block has scale 0 and zeros");

        Assert.That(GgufType.Q8_0.StorageFor([64, 10]), Is.EqualTo(GgmlType.Q8_0));
        Assert.That(GgufType.Q8_0.StorageFor([48, 10]), Is.EqualTo(GgmlType.F16));
        Assert.That(GgufType.Bf16.StorageFor([48, 10]), Is.EqualTo(GgmlType.Bf16));
        Assert.That(new GgufTensorInfo("t", [64, 10], GgmlType.Q8_0).ByteSize, Is.EqualTo(20 * 34));
    }
}
