using System.Text;

namespace Qwen35.Export.Gguf;

/// <summary>
/// Writes a GGUF v3 file (little-endian) to a stream: the header (magic, version, counts), the metadata, every tensor
/// info with its offset, then the data section, each tensor starting at a multiple of <see cref="Alignment"/>. The
/// header is computed from the tensor infos alone, so the data can be produced and written one tensor at a time by
/// <c>writeTensor</c>: a model never has to be in memory as a whole.
/// </summary>
public static class GgufFileWriter
{
    /// <summary>GGUF's default <c>general.alignment</c>; used when the metadata does not set another.</summary>
    public const int Alignment = 32;

    const uint Magic = 0x46554747; // "GGUF" read as a little-endian u32
    const uint Version = 3;

    /// <summary>Writes the file; <paramref name="writeTensor"/>(i, stream) must write exactly
    /// <see cref="GgufTensorInfo.ByteSize"/> bytes of tensor i (checked).</summary>
    public static void Write(Stream stream, GgufMetadata metadata, IReadOnlyList<GgufTensorInfo> tensors, Action<int, Stream> writeTensor)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("the GGUF writer assumes a little-endian host");
        var offsets = new long[tensors.Count];
        long next = 0;
        for (var i = 0; i < tensors.Count; i++)
        {
            offsets[i] = next;
            next = Align(next + tensors[i].ByteSize);
        }

        using (var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true))
        {
            w.Write(Magic);
            w.Write(Version);
            w.Write((ulong)tensors.Count);
            w.Write((ulong)metadata.Count);
            metadata.WriteTo(w);
            foreach (var (t, offset) in tensors.Zip(offsets))
            {
                GgufMetadata.WriteString(w, t.Name);
                w.Write((uint)t.Ne.Length);
                foreach (var n in t.Ne) w.Write((ulong)n);
                w.Write((uint)t.Type);
                w.Write((ulong)offset);
            }
            w.Flush();
        }
        Pad(stream);
        var dataStart = stream.Position;
        for (var i = 0; i < tensors.Count; i++)
        {
            var before = stream.Position;
            if (before - dataStart != offsets[i]) throw new InvalidOperationException($"GGUF tensor {tensors[i].Name} would start at {before - dataStart}, not {offsets[i]}");
            writeTensor(i, stream);
            var written = stream.Position - before;
            if (written != tensors[i].ByteSize)
                throw new InvalidOperationException($"GGUF tensor {tensors[i].Name}: wrote {written} bytes, its info says {tensors[i].ByteSize}");
            Pad(stream);
        }
    }

    static long Align(long n) => (n + Alignment - 1) / Alignment * Alignment;

    static void Pad(Stream s)
    {
        var pad = (int)(Align(s.Position) - s.Position);
        if (pad > 0) s.Write(new byte[pad]);
    }
}
