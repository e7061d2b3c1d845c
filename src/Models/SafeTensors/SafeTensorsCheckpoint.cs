using System.Text.Json;
using static TorchSharp.torch;

namespace Qwen35.Models.SafeTensors;

/// <summary>
/// A model's weights as one name space, whether stored in a single safetensors file or sharded with a
/// <c>model.safetensors.index.json</c>. Shards are opened lazily on first access and kept open until disposal.
/// </summary>
public sealed class SafeTensorsCheckpoint : IDisposable
{
    public const string SingleFileName = "model.safetensors";
    public const string IndexFileName = "model.safetensors.index.json";

    readonly string? _indexPath;
    readonly IReadOnlyDictionary<string, string> _shardOf;  // tensor name -> full shard path
    readonly Dictionary<string, SafeTensorsFile> _open = new(StringComparer.Ordinal);
    readonly object _gate = new();
    bool _disposed;

    SafeTensorsCheckpoint(string source, string? indexPath, IReadOnlyDictionary<string, string> shardOf)
    {
        Source = source;
        _indexPath = indexPath;
        _shardOf = shardOf;
        Names = shardOf.Keys.Order(StringComparer.Ordinal).ToArray();
    }

    /// <summary>The file (single file or index) this checkpoint was opened from.</summary>
    public string Source { get; }

    /// <summary>Every tensor name, sorted ordinally.</summary>
    public IReadOnlyCollection<string> Names { get; }

    /// <summary>The shard files (one for a single-file checkpoint), sorted.</summary>
    public IReadOnlyList<string> Files => _shardOf.Values.Distinct().Order(StringComparer.Ordinal).ToArray();

    /// <summary>
    /// Opens <paramref name="folderOrFile"/>: a safetensors file (any name, e.g. the golden <c>expected.safetensors</c>),
    /// a <c>*.index.json</c> file, or a folder holding <c>model.safetensors</c> or else
    /// <c>model.safetensors.index.json</c> (the single file wins when both exist, as in Hugging Face's loader).
    /// </summary>
    public static SafeTensorsCheckpoint Open(string folderOrFile)
    {
        var path = Path.GetFullPath(folderOrFile);
        if (Directory.Exists(path))
        {
            var single = Path.Combine(path, SingleFileName);
            var index = Path.Combine(path, IndexFileName);
            if (File.Exists(single)) return OpenSingle(single);
            if (File.Exists(index)) return OpenIndex(index);
            throw new UserInputException($"{path}: folder holds neither {SingleFileName} nor {IndexFileName}");
        }
        if (!File.Exists(path)) throw new UserInputException($"checkpoint not found: {path}");
        return path.EndsWith(".index.json", StringComparison.Ordinal) ? OpenIndex(path) : OpenSingle(path);
    }

    static SafeTensorsCheckpoint OpenSingle(string file)
    {
        // A single file is opened (and its header validated) immediately: there is nothing to be lazy about.
        var opened = SafeTensorsFile.Open(file);
        var checkpoint = new SafeTensorsCheckpoint(file, null, opened.Tensors.Keys.ToDictionary(k => k, _ => file, StringComparer.Ordinal));
        checkpoint._open[file] = opened;
        return checkpoint;
    }

    static SafeTensorsCheckpoint OpenIndex(string indexPath)
    {
        var folder = Path.GetDirectoryName(indexPath)!;
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(File.ReadAllBytes(indexPath));
        }
        catch (JsonException e)
        {
            throw SafeTensorsFormatException.In(indexPath, $"index is not valid JSON ({e.Message})", e);
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("weight_map", out var weightMap)
                || weightMap.ValueKind != JsonValueKind.Object)
                throw SafeTensorsFormatException.In(indexPath, "index must be an object with a 'weight_map' object");

            var shardOf = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var entry in weightMap.EnumerateObject())
            {
                if (entry.Value.ValueKind != JsonValueKind.String)
                    throw SafeTensorsFormatException.In(indexPath, $"weight_map['{entry.Name}'] must be a shard file name, found {entry.Value.ValueKind}");
                var shard = entry.Value.GetString()!;
                var shardPath = Path.GetFullPath(Path.Combine(folder, shard));
                // Shard names are plain file names beside the index; refuse anything that climbs out of the folder.
                if (Path.IsPathRooted(shard) || !shardPath.StartsWith(folder + Path.DirectorySeparatorChar, StringComparison.Ordinal))
                    throw SafeTensorsFormatException.In(indexPath, $"weight_map['{entry.Name}'] = '{shard}' points outside the checkpoint folder");
                if (!shardOf.TryAdd(entry.Name, shardPath))
                    throw SafeTensorsFormatException.In(indexPath, $"weight_map names tensor '{entry.Name}' twice");
            }

            foreach (var shard in shardOf.Values.Distinct())
                if (!File.Exists(shard))
                    throw SafeTensorsFormatException.In(indexPath, $"shard '{Path.GetFileName(shard)}' named in weight_map does not exist in {folder}");
            return new SafeTensorsCheckpoint(indexPath, indexPath, shardOf);
        }
    }

    /// <summary>True when the checkpoint holds <paramref name="name"/>.</summary>
    public bool Contains(string name) => _shardOf.ContainsKey(name);

    /// <summary>The validated header entry of <paramref name="name"/> (opens its shard if needed).</summary>
    public TensorInfo Info(string name) => FileOf(name).Tensors[name];

    /// <summary>The tensor <paramref name="name"/>: see <see cref="SafeTensorsFile.Load"/> for its memory behaviour.</summary>
    public Tensor Load(string name) => FileOf(name).Load(name);

    /// <summary>The tensor <paramref name="name"/> as a fresh copy read without the memory map
    /// (<see cref="SafeTensorsFile.Read"/>).</summary>
    public Tensor Read(string name) => FileOf(name).Read(name);

    /// <summary>Rows of the tensor <paramref name="name"/> as a fresh copy read without the memory map
    /// (<see cref="SafeTensorsFile.ReadRows"/>).</summary>
    public Tensor ReadRows(string name, long firstRow, long rowCount) => FileOf(name).ReadRows(name, firstRow, rowCount);

    SafeTensorsFile FileOf(string name)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!_shardOf.TryGetValue(name, out var shardPath))
            throw new KeyNotFoundException($"{Source}: no tensor named '{name}'");
        lock (_gate)
        {
            if (_open.TryGetValue(shardPath, out var file)) return file;
            file = SafeTensorsFile.Open(shardPath);
            // Check every name the index assigns to this shard now, so a bad index fails on first touch of the shard
            // with a message naming both files, not later with a bare missing-key error.
            var missing = _shardOf.Where(p => p.Value == shardPath && !file.Tensors.ContainsKey(p.Key)).Select(p => p.Key).FirstOrDefault();
            if (missing is not null)
            {
                file.Dispose();
                throw SafeTensorsFormatException.In(_indexPath!, $"weight_map places tensor '{missing}' in '{Path.GetFileName(shardPath)}', which does not contain it");
            }
            _open[shardPath] = file;
            return file;
        }
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        lock (_gate)
        {
            foreach (var file in _open.Values) file.Dispose();
            _open.Clear();
        }
    }
}
