using System.Buffers.Binary;
using System.Text;

namespace Qwen35.Models.Tests.SafeTensors;

/// <summary>
/// Builds safetensors files byte by byte from the format description (8-byte LE length, JSON, data), independent of
/// the project's writer, so reader tests do not trust the code they test and can forge broken files.
/// </summary>
static class SpecFile
{
    /// <summary>Writes length field + <paramref name="headerJson"/> (unpadded unless <paramref name="padTo8"/>) + data.</summary>
    public static string Write(string dir, string headerJson, byte[] data, bool padTo8 = true, string name = "t.safetensors")
    {
        var header = Encoding.UTF8.GetBytes(headerJson);
        if (padTo8 && header.Length % 8 != 0)
            header = [.. header, .. Enumerable.Repeat((byte)' ', 8 - header.Length % 8)];
        return WriteRaw(dir, LengthField((ulong)header.Length), header, data, name);
    }

    public static string WriteRaw(string dir, byte[] lengthField, byte[] header, byte[] data, string name = "t.safetensors")
    {
        var path = Path.Combine(dir, name);
        File.WriteAllBytes(path, [.. lengthField, .. header, .. data]);
        return path;
    }

    public static byte[] LengthField(ulong length)
    {
        var bytes = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, length);
        return bytes;
    }

    public static byte[] Floats(params float[] values)
    {
        var bytes = new byte[values.Length * 4];
        for (var i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), values[i]);
        return bytes;
    }

    public static byte[] Longs(params long[] values)
    {
        var bytes = new byte[values.Length * 8];
        for (var i = 0; i < values.Length; i++) BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(i * 8), values[i]);
        return bytes;
    }

    /// <summary>bf16 = the upper 16 bits of the fp32 pattern (exact for values with at most 8 significant bits).</summary>
    public static byte[] BFloat16(params float[] values)
    {
        var bytes = new byte[values.Length * 2];
        for (var i = 0; i < values.Length; i++)
            BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(i * 2), (ushort)(BitConverter.SingleToUInt32Bits(values[i]) >> 16));
        return bytes;
    }
}

static class ByteAssert
{
    /// <summary>Fast byte-for-byte equality (NUnit's collection comparer is slow on megabyte arrays) that reports the first difference.</summary>
    public static void Same(byte[] actual, byte[] expected, string what)
    {
        var firstDiff = actual.AsSpan().CommonPrefixLength(expected);
        if (firstDiff == actual.Length && actual.Length == expected.Length) return;
        Assert.Fail($"{what}: {actual.Length} vs {expected.Length} bytes, first difference at byte {firstDiff}");
    }
}
