namespace Qwen35;

/// <summary>
/// Writes a file so that a reader (or a crash) never sees half of it: the bytes go to a temporary file in the same
/// folder, which is then renamed over the target (a rename within one file system is atomic on Linux). The one
/// place every writer of results, checkpoints and exports goes through.
/// </summary>
public static class AtomicFile
{
    /// <summary>Writes through <paramref name="write"/> into a temporary sibling, then renames it to
    /// <paramref name="path"/>. The temporary file is removed if <paramref name="write"/> throws.
    /// <paramref name="durable"/> flushes the bytes to the disk before the rename (for large outputs such as
    /// safetensors, where a power loss must not leave a renamed but empty file).</summary>
    public static void Write(string path, Action<Stream> write, bool durable = false)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        var temp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, BufferBytes))
            {
                write(stream);
                if (durable) stream.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(temp); } catch (IOException) { /* best effort: the original error matters more */ }
            throw;
        }
    }

    const int BufferBytes = 1 << 16;

    public static void WriteAllText(string path, string text) => WriteText(path, w => w.Write(text));

    /// <summary>Writes UTF-8 text (no byte-order mark) through <paramref name="write"/>.</summary>
    public static void WriteText(string path, Action<TextWriter> write) =>
        Write(path, s =>
        {
            using var w = new StreamWriter(s, new System.Text.UTF8Encoding(false));
            write(w);
        });

    public static void WriteAllBytes(string path, ReadOnlySpan<byte> bytes)
    {
        var copy = bytes.ToArray();
        Write(path, s => s.Write(copy));
    }
}
