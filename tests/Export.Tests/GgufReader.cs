using System.Text;

namespace Qwen35.Export.Tests;

/// <summary>
/// A GGUF v3 reader written from the format's specification for the tests only (it shares no code with the writer):
/// the metadata with each value's type, the tensor infos, and a tensor's raw bytes.
/// </summary>
sealed class GgufReader
{
    public sealed record Tensor(string Name, ulong[] Ne, uint Type, ulong Offset);

    public uint Version { get; private init; }
    public Dictionary<string, (uint Type, object Value)> Metadata { get; } = new(StringComparer.Ordinal);
    public List<Tensor> Tensors { get; } = [];
    public long DataStart { get; private set; }
    public string Path { get; }

    GgufReader(string path) => Path = path;

    public static GgufReader Open(string path)
    {
        using var r = new BinaryReader(File.OpenRead(path));
        Assert.That(Encoding.ASCII.GetString(r.ReadBytes(4)), Is.EqualTo("GGUF"), "magic");
        var g = new GgufReader(path) { Version = r.ReadUInt32() };
        var nTensors = r.ReadUInt64();
        var nKv = r.ReadUInt64();
        for (ulong i = 0; i < nKv; i++)
        {
            var key = Str(r);
            var type = r.ReadUInt32();
            g.Metadata.Add(key, (type, Value(r, type)));
        }
        for (ulong i = 0; i < nTensors; i++)
        {
            var name = Str(r);
            var nDims = r.ReadUInt32();
            var ne = Enumerable.Range(0, (int)nDims).Select(_ => r.ReadUInt64()).ToArray();
            g.Tensors.Add(new Tensor(name, ne, r.ReadUInt32(), r.ReadUInt64()));
        }
        var alignment = g.Metadata.TryGetValue("general.alignment", out var a) ? (long)(uint)a.Value : 32;
        g.DataStart = (r.BaseStream.Position + alignment - 1) / alignment * alignment;
        return g;
    }

    static string Str(BinaryReader r) => Encoding.UTF8.GetString(r.ReadBytes(checked((int)r.ReadUInt64())));

    static object Value(BinaryReader r, uint type) => type switch
    {
        0 => r.ReadByte(), 1 => r.ReadSByte(), 2 => r.ReadUInt16(), 3 => r.ReadInt16(), 4 => r.ReadUInt32(), 5 => r.ReadInt32(),
        6 => r.ReadSingle(), 7 => r.ReadByte() != 0, 8 => Str(r), 10 => r.ReadUInt64(), 11 => r.ReadInt64(), 12 => r.ReadDouble(),
        9 => Array(r),
        _ => throw new InvalidDataException($"unknown GGUF value type {type}"),
    };

    static (uint ElementType, object[] Values) Array(BinaryReader r)
    {
        var et = r.ReadUInt32();
        var n = r.ReadUInt64();
        return (et, Enumerable.Range(0, checked((int)n)).Select(_ => Value(r, et)).ToArray());
    }

    public Tensor Info(string name) => Tensors.Single(t => t.Name == name);

    /// <summary>Bytes of <paramref name="count"/> values of ggml type <paramref name="type"/> (Q8_0: 34-byte blocks of 32).</summary>
    public static long ByteCount(uint type, ulong count) => type switch
    {
        0 => 4 * (long)count, 1 or 30 => 2 * (long)count, 8 => (long)count / 32 * 34,
        _ => throw new InvalidDataException($"type {type}"),
    };

    public byte[] Bytes(string name)
    {
        var t = Info(name);
        var count = t.Ne.Aggregate(1UL, (a, b) => a * b);
        using var f = File.OpenRead(Path);
        f.Position = DataStart + (long)t.Offset;
        var bytes = new byte[ByteCount(t.Type, count)];
        f.ReadExactly(bytes);
        return bytes;
    }

    /// <summary>A Q8_0 tensor dequantized (value = int8 · F16 scale, per block of 32), written from ggml's block layout.</summary>
    public float[] DequantizeQ8(string name)
    {
        Assert.That(Info(name).Type, Is.EqualTo(8u), $"{name} is not Q8_0");
        var b = Bytes(name);
        var v = new float[b.Length / 34 * 32];
        for (var blk = 0; blk < b.Length / 34; blk++)
        {
            var d = (float)BitConverter.UInt16BitsToHalf(BitConverter.ToUInt16(b, blk * 34));
            for (var j = 0; j < 32; j++) v[blk * 32 + j] = (sbyte)b[blk * 34 + 2 + j] * d;
        }
        return v;
    }

    /// <summary>An F32 tensor's values, innermost dimension fastest.</summary>
    public float[] F32(string name)
    {
        Assert.That(Info(name).Type, Is.EqualTo(0u), $"{name} is not F32");
        var b = Bytes(name);
        var v = new float[b.Length / 4];
        Buffer.BlockCopy(b, 0, v, 0, b.Length);
        return v;
    }
}
