using System.Buffers;
using System.Text.Unicode;

namespace Qwen35.Data;

/// <summary>
/// Strict UTF-8 decoding of dataset files: an invalid byte is reported with its position instead of silently becoming
/// U+FFFD (which would then be trained as if it were text).
/// </summary>
static class Utf8Text
{
    static ReadOnlySpan<byte> Bom => [0xEF, 0xBB, 0xBF];

    /// <summary>Where the content starts: after a UTF-8 byte-order mark, if any.</summary>
    public static int ContentStart(byte[] bytes) => bytes.AsSpan().StartsWith(Bom) ? Bom.Length : 0;

    /// <summary>Decodes <paramref name="bytes"/>; on invalid UTF-8, null and the 0-based index of the first bad byte.</summary>
    public static (string? Text, int BadByte) Decode(ReadOnlySpan<byte> bytes)
    {
        var chars = ArrayPool<char>.Shared.Rent(Math.Max(1, bytes.Length));
        try
        {
            var status = Utf8.ToUtf16(bytes, chars, out var read, out var written, replaceInvalidSequences: false, isFinalBlock: true);
            return status == OperationStatus.Done ? (new string(chars, 0, written), -1) : (null, read);
        }
        finally
        {
            ArrayPool<char>.Shared.Return(chars);
        }
    }

    /// <summary>
    /// The lines of a text file (split at '\n', a trailing '\r' removed), numbered from 1 like an editor; a line
    /// that is not valid UTF-8 comes with its error ("invalid UTF-8 at byte N of the line", N 1-based) instead of text.
    /// </summary>
    public static IEnumerable<(long Line, string? Text, string? Error)> Lines(byte[] bytes)
    {
        var start = ContentStart(bytes);
        long line = 0;
        while (start < bytes.Length)
        {
            var newline = Array.IndexOf(bytes, (byte)'\n', start);
            var end = newline < 0 ? bytes.Length : newline;
            var length = end - start;
            if (length > 0 && bytes[end - 1] == '\r') length--;
            line++;
            var (text, bad) = Decode(bytes.AsSpan(start, length));
            yield return (line, text, text == null ? $"invalid UTF-8 at byte {bad + 1} of the line" : null);
            start = end + 1;
        }
    }

    /// <summary>1-based line and 1-based byte within that line of a byte offset of the file.</summary>
    public static (long Line, long ByteInLine) LineOf(byte[] bytes, int offset)
    {
        long line = 1;
        var lineStart = ContentStart(bytes);
        for (var i = lineStart; i < offset; i++)
            if (bytes[i] == '\n') { line++; lineStart = i + 1; }
        return (line, offset - lineStart + 1);
    }
}
