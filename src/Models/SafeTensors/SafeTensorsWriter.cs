using System.Text.Json;
using static TorchSharp.torch;

namespace Qwen35.Models.SafeTensors;

/// <summary>
/// Writes safetensors files in the canonical layout: header entries sorted by name with <c>__metadata__</c> first,
/// the header padded with spaces to a multiple of 8, and the data in the same sorted order. Files are written to a
/// temporary name in the destination folder and renamed into place, so a crash never leaves a half-written file.
/// </summary>
public static class SafeTensorsWriter
{
    /// <summary>Metadata written when the caller gives none; Hugging Face's loader insists on a <c>format</c> key.</summary>
    public static IReadOnlyDictionary<string, string> DefaultMetadata { get; } = new Dictionary<string, string> { ["format"] = "pt" };

    /// <summary>
    /// Writes <paramref name="tensors"/> to <paramref name="path"/>. Each tensor is taken as
    /// <c>detach().cpu().contiguous()</c>, one at a time, and streamed in chunks (no 2 GB byte[] limit).
    /// <paramref name="metadata"/> defaults to {"format":"pt"}; a given map without "format" gets "format":"pt" added.
    /// </summary>
    public static void Write(string path, IEnumerable<(string Name, Tensor Tensor)> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var sorted = SortAndCheck(tensors);
        var header = BuildHeader(sorted, WithFormat(metadata));
        AtomicFile.Write(path, stream =>
        {
            stream.Write(header);
            foreach (var (_, tensor) in sorted) WriteData(stream, tensor);
        }, durable: true);
    }

    /// <summary>
    /// Writes <paramref name="tensors"/> into <paramref name="folder"/> as shards of at most
    /// <paramref name="maxShardBytes"/> data bytes each (a single larger tensor gets a shard of its own), named
    /// <c>{prefix}-00001-of-0000N.safetensors</c>, plus <c>{prefix}.safetensors.index.json</c>. When everything fits in
    /// one shard, writes <c>{prefix}.safetensors</c> alone. Returns the paths written (index last).
    /// </summary>
    /// <remarks>
    /// A stale <c>{prefix}.safetensors</c> is deleted after a sharded write (Hugging Face's loader prefers it over
    /// the index, so it would shadow the new shards), and a stale index is deleted after a single-file write.
    /// </remarks>
    public static IReadOnlyList<string> WriteSharded(string folder, IEnumerable<(string Name, Tensor Tensor)> tensors,
        long maxShardBytes, string prefix = "model")
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(maxShardBytes, 0);
        Directory.CreateDirectory(folder);
        var sorted = SortAndCheck(tensors);
        var single = Path.Combine(folder, $"{prefix}.safetensors");
        var indexPath = Path.Combine(folder, $"{prefix}.safetensors.index.json");

        var shards = new List<List<(string Name, Tensor Tensor)>> { new() };
        long shardBytes = 0;
        foreach (var item in sorted)
        {
            var bytes = ByteLength(item.Tensor);
            if (shards[^1].Count > 0 && shardBytes + bytes > maxShardBytes)
            {
                shards.Add([]);
                shardBytes = 0;
            }
            shards[^1].Add(item);
            shardBytes += bytes;
        }

        if (shards.Count == 1)
        {
            Write(single, sorted);
            File.Delete(indexPath);
            return [single];
        }

        var written = new List<string>();
        var weightMap = new SortedDictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i < shards.Count; i++)
        {
            var name = $"{prefix}-{i + 1:D5}-of-{shards.Count:D5}.safetensors";
            var shardPath = Path.Combine(folder, name);
            Write(shardPath, shards[i]);
            written.Add(shardPath);
            foreach (var (tensorName, _) in shards[i]) weightMap[tensorName] = name;
        }

        var totalSize = sorted.Sum(t => ByteLength(t.Tensor));
        AtomicFile.Write(indexPath, stream =>
        {
            using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
            json.WriteStartObject();
            json.WriteStartObject("metadata");
            json.WriteNumber("total_size", totalSize);
            json.WriteEndObject();
            json.WriteStartObject("weight_map");
            foreach (var (tensorName, shard) in weightMap) json.WriteString(tensorName, shard);
            json.WriteEndObject();
            json.WriteEndObject();
        }, durable: true);
        File.Delete(single);
        written.Add(indexPath);
        return written;
    }

    static List<(string Name, Tensor Tensor)> SortAndCheck(IEnumerable<(string Name, Tensor Tensor)> tensors)
    {
        var list = tensors.OrderBy(t => t.Name, StringComparer.Ordinal).ToList();
        for (var i = 0; i < list.Count; i++)
        {
            var (name, tensor) = list[i];
            if (name == "__metadata__") throw new ArgumentException("a tensor cannot be named '__metadata__'");
            if (i > 0 && list[i - 1].Name == name) throw new ArgumentException($"tensor name '{name}' given twice");
            if (tensor.is_sparse) throw new ArgumentException($"tensor '{name}' is sparse; safetensors stores dense tensors");
            SafeTensorsDtype.FromScalarType(tensor.dtype);  // throws NotSupportedException naming the dtype
        }
        return list;
    }

    static IReadOnlyDictionary<string, string> WithFormat(IReadOnlyDictionary<string, string>? metadata)
    {
        if (metadata is null) return DefaultMetadata;
        if (metadata.ContainsKey("format")) return metadata;
        return new Dictionary<string, string>(metadata) { ["format"] = "pt" };
    }

    static long ByteLength(Tensor tensor) => tensor.numel() * tensor.ElementSize;

    /// <summary>Length field + JSON header, padded with spaces so the data section starts at a multiple of 8.</summary>
    static byte[] BuildHeader(List<(string Name, Tensor Tensor)> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteStartObject("__metadata__");
            foreach (var (key, value) in metadata.OrderBy(p => p.Key, StringComparer.Ordinal)) json.WriteString(key, value);
            json.WriteEndObject();
            long offset = 0;
            foreach (var (name, tensor) in tensors)
            {
                var end = offset + ByteLength(tensor);
                json.WriteStartObject(name);
                json.WriteString("dtype", SafeTensorsDtype.FromScalarType(tensor.dtype));
                json.WriteStartArray("shape");
                foreach (var dim in tensor.shape) json.WriteNumberValue(dim);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(end);
                json.WriteEndArray();
                json.WriteEndObject();
                offset = end;
            }
            json.WriteEndObject();
        }
        while (buffer.Length % 8 != 0) buffer.WriteByte((byte)' ');

        var header = new byte[8 + buffer.Length];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(header, (ulong)buffer.Length);
        buffer.ToArray().CopyTo(header, 8);
        return header;
    }

    /// <summary>Streams one tensor's bytes in chunks of whole elements, so no single span exceeds the 2 GB limit.</summary>
    static void WriteData(Stream stream, Tensor tensor)
    {
        using var scope = NewDisposeScope();
        var flat = tensor.detach().cpu().contiguous().reshape(-1);
        var elementSize = (int)tensor.ElementSize;
        var total = flat.numel();
        var chunkElements = Math.Max(1, SafeTensorsFile.ChunkBytes / elementSize);
        for (long first = 0; first < total; first += chunkElements)
        {
            using var chunk = flat.narrow(0, first, Math.Min(chunkElements, total - first));
            stream.Write(chunk.bytes);
        }
    }
}
