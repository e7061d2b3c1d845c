using Microsoft.Win32.SafeHandles;
using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Models.SafeTensors;

/// <summary>
/// A read-only, validated safetensors file whose tensors are loaded without copying.
/// </summary>
/// <remarks>
/// <para><b>Memory behaviour.</b> <see cref="Load"/> returns a CPU tensor that is a <i>view</i> into a private
/// copy-on-write memory mapping of the file (<c>torch.from_file(path, shared: false)</c>, one mapping per dtype
/// because TorchSharp cannot reinterpret a tensor's dtype). Nothing is read until pages are touched; the OS
/// serves them from the page cache. Writing into a loaded tensor copies only the touched pages into private memory
/// and never changes the file. A caller that does <c>parameter.copy_(file.Load(name))</c> therefore reads the bytes
/// once, straight into the parameter, with no intermediate copy (and a bf16 tensor is never widened to fp32).</para>
/// <para><b>Lifetime.</b> libtorch reference-counts the mapping, so loaded tensors stay valid after this object is
/// disposed; the mapping is released when the last view is freed.</para>
/// <para><b>Unaligned data.</b> A tensor whose absolute file offset is not a multiple of its element size cannot be
/// a view of the typed mapping; it is read into a fresh tensor instead (chunked, never through a 2 GB byte[]).
/// Files written by Hugging Face or <see cref="SafeTensorsWriter"/> with one dtype are always aligned.</para>
/// </remarks>
public sealed class SafeTensorsFile : IDisposable
{
    /// <summary>Chunk used when bytes must be read or written explicitly (unaligned tensors, the writer).</summary>
    internal const int ChunkBytes = 16 * 1024 * 1024;

    readonly SafeTensorsHeader _header;
    readonly SafeFileHandle _handle;
    readonly Dictionary<string, Tensor> _maps = new(StringComparer.Ordinal);
    readonly object _gate = new();
    bool _disposed;

    SafeTensorsFile(string path, SafeFileHandle handle, SafeTensorsHeader header)
    {
        Path = path;
        _handle = handle;
        _header = header;
    }

    /// <summary>Full path of the file.</summary>
    public string Path { get; }

    /// <summary>Every tensor entry, keyed by name.</summary>
    public IReadOnlyDictionary<string, TensorInfo> Tensors => _header.Tensors;

    /// <summary>The <c>__metadata__</c> string map (empty when the header has none).</summary>
    public IReadOnlyDictionary<string, string> Metadata => _header.Metadata;

    /// <summary>Absolute file offset where the data section starts (8 + header length).</summary>
    public long DataOffset => _header.DataOffset;

    /// <summary>Opens <paramref name="path"/> and validates its whole header (see docs/safetensors.md for the checks).</summary>
    public static SafeTensorsFile Open(string path)
    {
        path = System.IO.Path.GetFullPath(path);
        var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete);
        try
        {
            return new SafeTensorsFile(path, handle, SafeTensorsHeader.Read(handle, path));
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The tensor <paramref name="name"/> on the CPU in the file's dtype: a copy-on-write view of the file mapping,
    /// or a fresh copy when its offset is unaligned (see remarks). Never requires grad.
    /// </summary>
    public Tensor Load(string name)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!_header.Tensors.TryGetValue(name, out var info))
            throw new KeyNotFoundException($"{Path}: no tensor named '{name}'");

        var start = _header.DataOffset + info.DataStart;
        if (info.NumElements == 0)
            return empty(info.Shape, info.ScalarType);
        if (start % info.ElementSize != 0)
            return ReadCopy(info, start, info.Shape, info.NumElements);

        using var flat = Map(info.Dtype).narrow(0, start / info.ElementSize, info.NumElements);
        return flat.view(info.Shape);
    }

    /// <summary>
    /// Rows [<paramref name="firstRow"/>, <paramref name="firstRow"/> + <paramref name="rowCount"/>) of the tensor
    /// <paramref name="name"/> (along its first dim) as a fresh CPU tensor in the file's dtype, read with positioned
    /// reads, never through the memory map: a caller that reads a checkpoint piece by piece (the streamed GGUF export)
    /// then holds only what it keeps in its process, not every mapped page it has passed (mapped pages count in the
    /// resident set until the mapping goes).
    /// </summary>
    public Tensor ReadRows(string name, long firstRow, long rowCount)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!_header.Tensors.TryGetValue(name, out var info))
            throw new KeyNotFoundException($"{Path}: no tensor named '{name}'");
        if (info.Shape.Length == 0)
            throw new ArgumentException($"{Path}: '{name}' is a scalar; it has no rows");
        var rows = info.Shape[0];
        if (firstRow < 0 || rowCount < 0 || firstRow + rowCount > rows)
            throw new ArgumentOutOfRangeException(nameof(firstRow), $"{Path}: rows {firstRow}..{firstRow + rowCount} of '{name}', which has {rows}");
        var rowElements = rows == 0 ? 0 : info.NumElements / rows;
        long[] shape = [rowCount, .. info.Shape[1..]];
        return ReadCopy(info, _header.DataOffset + info.DataStart + firstRow * rowElements * info.ElementSize, shape, rowCount * rowElements);
    }

    /// <summary>The whole tensor <paramref name="name"/> as a fresh CPU tensor read with positioned reads (see
    /// <see cref="ReadRows"/>).</summary>
    public Tensor Read(string name)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!_header.Tensors.TryGetValue(name, out var info))
            throw new KeyNotFoundException($"{Path}: no tensor named '{name}'");
        return ReadCopy(info, _header.DataOffset + info.DataStart, info.Shape, info.NumElements);
    }

    /// <summary>The whole file mapped as a 1-D tensor of <paramref name="dtype"/> elements, created once per dtype.</summary>
    Tensor Map(string dtype)
    {
        lock (_gate)
        {
            if (_maps.TryGetValue(dtype, out var map)) return map;
            var elementSize = SafeTensorsDtype.ElementSize(dtype);
            var length = RandomAccess.GetLength(_handle);
            // from_file maps the path, not our open handle: if the file was replaced or truncated since Open, the
            // header we validated no longer describes it, so refuse rather than read the wrong bytes.
            if (new FileInfo(Path).Length != length)
                throw new IOException($"{Path} changed size since it was opened; reopen it");
            var elements = length / elementSize;
            map = from_file(Path, shared: false, size: elements, dtype: SafeTensorsDtype.ToScalarType(dtype));
            // The map is owned by this file, not by whatever dispose scope the caller happens to be in.
            map.DetachFromDisposeScope();
            _maps[dtype] = map;
            return map;
        }
    }

    /// <summary>Reads <paramref name="elements"/> elements of <paramref name="info"/>'s dtype from file offset
    /// <paramref name="start"/> into a new tensor of <paramref name="shape"/>, in chunks of whole elements.</summary>
    Tensor ReadCopy(TensorInfo info, long start, long[] shape, long elements)
    {
        var result = empty(shape, info.ScalarType);
        if (elements == 0) return result;
        try
        {
            using var flat = result.view(-1);
            var chunkElements = Math.Max(1, ChunkBytes / info.ElementSize);
            for (long first = 0; first < elements; first += chunkElements)
            {
                var count = Math.Min(chunkElements, elements - first);
                using var chunk = flat.narrow(0, first, count);
                SafeTensorsHeader.ReadExactly(_handle, chunk.bytes, start + first * info.ElementSize, Path);
            }
            return result;
        }
        catch
        {
            result.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        lock (_gate)
        {
            foreach (var map in _maps.Values) map.Dispose();
            _maps.Clear();
        }
        _handle.Dispose();
    }
}
