using System.Buffers.Binary;
using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace Qwen35.Export.Gguf;

/// <summary>
/// Encodes fp32 values into a ggml storage type and writes them, a bounded chunk at a time, so that no second full
/// copy of a large tensor (an embedding of 248k × 4096) exists on the host besides the tensor itself.
/// F16 and BF16 round to nearest even, as gguf-py does.
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
        var bytes = new byte[Math.Min(n, ChunkElements) * type.ElementBytes()];
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
            default:
                throw new ArgumentOutOfRangeException(nameof(type));
        }
    }

    /// <summary>fp32 → bf16 bits, round to nearest even; a NaN stays a (quiet) NaN. gguf-py's <c>__compute_fp32_to_bf16</c>.</summary>
    public static ushort ToBf16(float value)
    {
        var n = BitConverter.SingleToUInt32Bits(value);
        if ((n & 0x7fffffffu) > 0x7f800000u) return (ushort)(((n & 0xffff0000u) | (64u << 16)) >> 16);
        return (ushort)((n + (0x7fffu + ((n >> 16) & 1u))) >> 16);
    }
}
