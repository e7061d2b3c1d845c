using System.Buffers.Binary;
using System.Text.Json;
using Microsoft.Win32.SafeHandles;

namespace Qwen35.Models.SafeTensors;

/// <summary>
/// The parsed and validated header of a safetensors file: the 8-byte little-endian header length, the JSON header,
/// and where the data section starts. Every check a hostile or truncated file could fail is made here, once, so
/// that loading a tensor afterwards can never read outside the file.
/// </summary>
public sealed class SafeTensorsHeader
{
    /// <summary>Headers above this size are refused before allocating anything (real ones are well under 10 MB).</summary>
    public const long MaxHeaderBytes = 100L * 1024 * 1024;

    const string MetadataKey = "__metadata__";

    public required IReadOnlyDictionary<string, TensorInfo> Tensors { get; init; }

    public required IReadOnlyDictionary<string, string> Metadata { get; init; }

    /// <summary>Absolute file offset of the data section: 8 + header length.</summary>
    public required long DataOffset { get; init; }

    /// <summary>Length in bytes of the data section (file length - <see cref="DataOffset"/>).</summary>
    public required long DataLength { get; init; }

    /// <summary>Reads and validates the header of the open file <paramref name="handle"/>; <paramref name="path"/> is for messages.</summary>
    public static SafeTensorsHeader Read(SafeFileHandle handle, string path)
    {
        var fileLength = RandomAccess.GetLength(handle);
        if (fileLength < 8)
            throw SafeTensorsFormatException.In(path, $"file is {fileLength} bytes, shorter than the 8-byte header length field");

        Span<byte> lengthField = stackalloc byte[8];
        ReadExactly(handle, lengthField, 0, path);
        var headerLength = BinaryPrimitives.ReadUInt64LittleEndian(lengthField);
        if (headerLength > MaxHeaderBytes)
            throw SafeTensorsFormatException.In(path, $"header length {headerLength} exceeds the {MaxHeaderBytes}-byte limit (corrupt or not a safetensors file)");
        if ((long)headerLength > fileLength - 8)
            throw SafeTensorsFormatException.In(path, $"header length {headerLength} is larger than the {fileLength - 8} bytes after the length field (truncated file?)");

        var json = new byte[headerLength];
        ReadExactly(handle, json, 8, path);
        var dataOffset = 8 + (long)headerLength;
        return Parse(json, dataOffset, fileLength - dataOffset, path);
    }

    /// <summary>
    /// Parses and validates header JSON bytes against a data section of <paramref name="dataLength"/> bytes that
    /// starts at file offset <paramref name="dataOffset"/>.
    /// </summary>
    public static SafeTensorsHeader Parse(ReadOnlyMemory<byte> json, long dataOffset, long dataLength, string path)
    {
        // JsonDocument only checks UTF-8 inside strings when they are decoded, so validate the bytes up front.
        if (!System.Text.Unicode.Utf8.IsValid(json.Span))
            throw SafeTensorsFormatException.In(path, "header is not valid UTF-8 JSON (invalid UTF-8 byte sequence)");
        JsonDocument document;
        try
        {
            // Trailing space padding is plain JSON whitespace.
            document = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException e)
        {
            throw SafeTensorsFormatException.In(path, $"header is not valid UTF-8 JSON ({e.Message})", e);
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw SafeTensorsFormatException.In(path, $"header must be a JSON object, found {root.ValueKind}");

            var tensors = new Dictionary<string, TensorInfo>(StringComparer.Ordinal);
            IReadOnlyDictionary<string, string> metadata = new Dictionary<string, string>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var property in root.EnumerateObject())
            {
                // JsonDocument keeps duplicate keys; a second entry could silently shadow the first, so refuse it.
                if (!seen.Add(property.Name))
                    throw SafeTensorsFormatException.In(path, $"header key '{property.Name}' appears twice");
                if (property.Name == MetadataKey)
                    metadata = ParseMetadata(property.Value, path);
                else
                    tensors.Add(property.Name, ParseEntry(property.Name, property.Value, dataLength, path));
            }

            CheckNoOverlap(tensors.Values, path);
            return new SafeTensorsHeader { Tensors = tensors, Metadata = metadata, DataOffset = dataOffset, DataLength = dataLength };
        }
    }

    static Dictionary<string, string> ParseMetadata(JsonElement element, string path)
    {
        if (element.ValueKind != JsonValueKind.Object)
            throw SafeTensorsFormatException.In(path, $"'{MetadataKey}' must be an object of strings, found {element.ValueKind}");
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var item in element.EnumerateObject())
        {
            if (item.Value.ValueKind != JsonValueKind.String)
                throw SafeTensorsFormatException.In(path, $"'{MetadataKey}.{item.Name}' must be a string, found {item.Value.ValueKind}");
            if (!metadata.TryAdd(item.Name, item.Value.GetString()!))
                throw SafeTensorsFormatException.In(path, $"'{MetadataKey}.{item.Name}' appears twice");
        }
        return metadata;
    }

    static TensorInfo ParseEntry(string name, JsonElement entry, long dataLength, string path)
    {
        string Where(string field) => $"tensor '{name}' field '{field}'";

        if (entry.ValueKind != JsonValueKind.Object)
            throw SafeTensorsFormatException.In(path, $"tensor '{name}' must be an object, found {entry.ValueKind}");

        if (!entry.TryGetProperty("dtype", out var dtypeElement))
            throw SafeTensorsFormatException.In(path, $"tensor '{name}' has no 'dtype'");
        if (dtypeElement.ValueKind != JsonValueKind.String)
            throw SafeTensorsFormatException.In(path, $"{Where("dtype")} must be a string, found {dtypeElement.ValueKind}");
        var dtype = dtypeElement.GetString()!;
        if (!SafeTensorsDtype.IsSupported(dtype))
            throw SafeTensorsFormatException.In(path, $"{Where("dtype")}: unknown or unsupported dtype '{dtype}' (supported: {string.Join(", ", SafeTensorsDtype.Names)})");

        var shape = ReadNonNegativeIntegers(entry, "shape", name, path);
        var offsets = ReadNonNegativeIntegers(entry, "data_offsets", name, path);
        if (offsets.Length != 2)
            throw SafeTensorsFormatException.In(path, $"{Where("data_offsets")} must hold exactly 2 integers, found {offsets.Length}");
        var (start, end) = (offsets[0], offsets[1]);
        if (start > end)
            throw SafeTensorsFormatException.In(path, $"{Where("data_offsets")}: begin {start} is after end {end}");
        if (end > dataLength)
            throw SafeTensorsFormatException.In(path, $"{Where("data_offsets")}: end {end} is beyond the {dataLength}-byte data section (truncated file?)");

        long expectedBytes;
        try
        {
            expectedBytes = shape.Aggregate(1L, (a, b) => checked(a * b));
            expectedBytes = checked(expectedBytes * SafeTensorsDtype.ElementSize(dtype));
        }
        catch (OverflowException)
        {
            throw SafeTensorsFormatException.In(path, $"{Where("shape")}: element count of {Shapes.Format(shape)} overflows 64 bits");
        }
        if (expectedBytes != end - start)
            throw SafeTensorsFormatException.In(path,
                $"tensor '{name}': data_offsets span {end - start} bytes but {dtype}{Shapes.Format(shape)} needs {expectedBytes}");

        return new TensorInfo(name, dtype, shape, start, end);
    }

    static long[] ReadNonNegativeIntegers(JsonElement entry, string field, string name, string path)
    {
        if (!entry.TryGetProperty(field, out var array))
            throw SafeTensorsFormatException.In(path, $"tensor '{name}' has no '{field}'");
        if (array.ValueKind != JsonValueKind.Array)
            throw SafeTensorsFormatException.In(path, $"tensor '{name}' field '{field}' must be an array, found {array.ValueKind}");
        var values = new long[array.GetArrayLength()];
        var i = 0;
        foreach (var item in array.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt64(out var value) || value < 0)
                throw SafeTensorsFormatException.In(path, $"tensor '{name}' field '{field}'[{i}] must be a non-negative integer, found {item.GetRawText()}");
            values[i++] = value;
        }
        return values;
    }

    /// <summary>Two tensors sharing bytes would alias each other after a load; a well-formed file never does that.</summary>
    static void CheckNoOverlap(IEnumerable<TensorInfo> tensors, string path)
    {
        TensorInfo? previous = null;
        foreach (var t in tensors.Where(t => t.ByteLength > 0).OrderBy(t => t.DataStart))
        {
            if (previous is not null && t.DataStart < previous.DataEnd)
                throw SafeTensorsFormatException.In(path,
                    $"tensors '{previous.Name}' [{previous.DataStart}, {previous.DataEnd}) and '{t.Name}' [{t.DataStart}, {t.DataEnd}) overlap");
            previous = t;
        }
    }

    internal static void ReadExactly(SafeFileHandle handle, Span<byte> buffer, long offset, string path)
    {
        while (buffer.Length > 0)
        {
            var read = RandomAccess.Read(handle, buffer, offset);
            if (read == 0) throw SafeTensorsFormatException.In(path, $"unexpected end of file at byte {offset}");
            buffer = buffer[read..];
            offset += read;
        }
    }
}
