using System.Text;

namespace Qwen35.Export.Gguf;

/// <summary>GGUF's metadata value types (gguf.h <c>enum gguf_type</c>).</summary>
public enum GgufValueType : uint
{
    U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, Bool = 7, String = 8, Array = 9, U64 = 10, I64 = 11, F64 = 12,
}

/// <summary>
/// The key/value section of a GGUF file, in insertion order. Typed adders only: llama.cpp type-checks the values it
/// reads (counts u32, epsilons f32, <c>rope.dimension_sections</c> an i32 array), so the type is part of the key's
/// contract, not a detail of the writer.
/// </summary>
public sealed class GgufMetadata
{
    readonly List<(string Key, Action<BinaryWriter> Write)> _entries = [];
    readonly HashSet<string> _keys = new(StringComparer.Ordinal);

    public int Count => _entries.Count;
    public IEnumerable<string> Keys => _entries.Select(e => e.Key);

    public GgufMetadata U32(string key, uint value) => Add(key, w => { w.Write((uint)GgufValueType.U32); w.Write(value); });
    public GgufMetadata I32(string key, int value) => Add(key, w => { w.Write((uint)GgufValueType.I32); w.Write(value); });
    public GgufMetadata F32(string key, float value) => Add(key, w => { w.Write((uint)GgufValueType.F32); w.Write(value); });
    public GgufMetadata Bool(string key, bool value) => Add(key, w => { w.Write((uint)GgufValueType.Bool); w.Write((byte)(value ? 1 : 0)); });
    public GgufMetadata String(string key, string value) => Add(key, w => { w.Write((uint)GgufValueType.String); WriteString(w, value); });

    public GgufMetadata I32Array(string key, IReadOnlyList<int> values) => Add(key, w =>
    {
        w.Write((uint)GgufValueType.Array);
        w.Write((uint)GgufValueType.I32);
        w.Write((ulong)values.Count);
        foreach (var v in values) w.Write(v);
    });

    public GgufMetadata StringArray(string key, IReadOnlyList<string> values) => Add(key, w =>
    {
        w.Write((uint)GgufValueType.Array);
        w.Write((uint)GgufValueType.String);
        w.Write((ulong)values.Count);
        foreach (var v in values) WriteString(w, v);
    });

    GgufMetadata Add(string key, Action<BinaryWriter> write)
    {
        if (!_keys.Add(key)) throw new InvalidOperationException($"GGUF key {key} written twice");
        _entries.Add((key, write));
        return this;
    }

    internal void WriteTo(BinaryWriter w)
    {
        foreach (var (key, write) in _entries)
        {
            WriteString(w, key);
            write(w);
        }
    }

    /// <summary>A GGUF string: u64 byte length, then UTF-8 without a terminator.</summary>
    internal static void WriteString(BinaryWriter w, string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s);
        w.Write((ulong)bytes.Length);
        w.Write(bytes);
    }
}
