using System.Buffers.Binary;
using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace Qwen35.Export.Gguf;

/// <summary>
/// Encodes fp32 values into a ggml storage type and writes them, a bounded chunk at a time, so that no second full
/// copy of a large tensor (an embedding of 248k × 4096) exists on the host besides the tensor itself.
/// F16 and BF16 round to nearest even, as gguf-py does; Q8_0 as ggml's reference quantizer (and gguf-py) does.
/// </summary>
public static class GgufEncoding
{
    const long ChunkElements = 1 << 20;

    /// <summary>Writes <paramref name="values"/> (fp32, on the CPU; any shape, read in row-major order) as
    /// <paramref name="type"/>.</summary>
    public static void Write(Stream stream, Tensor values, GgmlType type)
    {
        if (values.dtype != ScalarType.Float32) throw new ArgumentException($"expected fp32 values, got {values.dtype}");
        using var flat = values.contiguous().reshape(-1);
        var n = flat.shape[0];
        var bytes = new byte[type.Bytes(Math.Min(n, ChunkElements))];
        for (long start = 0; start < n; start += ChunkElements)
        {
            var len = (int)Math.Min(ChunkElements, n - start);
            using var chunk = flat.narrow(0, start, len);
            var floats = chunk.data<float>().ToArray();
            var size = Encode(floats, type, bytes);
            stream.Write(bytes, 0, size);
        }
    }

    /// <summary>Encodes <paramref name="values"/> into <paramref name="into"/>; returns the byte count.</summary>
    public static int Encode(ReadOnlySpan<float> values, GgmlType type, Span<byte> into)
    {
        switch (type)
        {
            case GgmlType.F32:
                MemoryMarshal.AsBytes(values).CopyTo(into);
                return values.Length * 4;
            case GgmlType.F16:
                for (var i = 0; i < values.Length; i++)
                    BinaryPrimitives.WriteUInt16LittleEndian(into[(2 * i)..], BitConverter.HalfToUInt16Bits((Half)values[i]));
                return values.Length * 2;
            case GgmlType.Bf16:
                for (var i = 0; i < values.Length; i++)
                    BinaryPrimitives.WriteUInt16LittleEndian(into[(2 * i)..], ToBf16(values[i]));
                return values.Length * 2;
            case GgmlType.Q8_0:
                if (values.Length % GgufTypes.Q8Block != 0) throw new ArgumentException($"Q8_0 needs a multiple of {GgufTypes.Q8Block} values, not {values.Length}");
                for (var b = 0; b < values.Length / GgufTypes.Q8Block; b++)
                    EncodeQ8Block(values.Slice(b * GgufTypes.Q8Block, GgufTypes.Q8Block), into.Slice(b * GgufTypes.Q8BlockBytes, GgufTypes.Q8BlockBytes));
                return values.Length / GgufTypes.Q8Block * GgufTypes.Q8BlockBytes;
            default:
                throw new ArgumentOutOfRangeException(nameof(type));
        }
    }

    /// <summary>One Q8_0 block: d = max|x| / 127 stored as F16, then int8 round(x / d) (half away from zero), computed
    /// with the unrounded d as ggml's <c>quantize_row_q8_0_ref</c> does.</summary>
    static void EncodeQ8Block(ReadOnlySpan<float> x, Span<byte> into)
    {
        var amax = 0f;
        foreach (var v in x) amax = MathF.Max(amax, MathF.Abs(v));
        var d = amax / 127f;
        var id = d != 0 ? 1f / d : 0f;
        BinaryPrimitives.WriteUInt16LittleEndian(into, BitConverter.HalfToUInt16Bits((Half)d));
        for (var j = 0; j < x.Length; j++) into[2 + j] = (byte)(sbyte)MathF.Round(x[j] * id, MidpointRounding.AwayFromZero);
    }

    /// <summary>fp32 → bf16 bits, round to nearest even; a NaN stays a (quiet) NaN. gguf-py's <c>__compute_fp32_to_bf16</c>.</summary>
    public static ushort ToBf16(float value)
    {
        var n = BitConverter.SingleToUInt32Bits(value);
        if ((n & 0x7fffffffu) > 0x7f800000u) return (ushort)(((n & 0xffff0000u) | (64u << 16)) >> 16);
        return (ushort)((n + (0x7fffu + ((n >> 16) & 1u))) >> 16);
    }
}
