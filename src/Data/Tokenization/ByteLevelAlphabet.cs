namespace Qwen35.Data;

/// <summary>
/// GPT-2's reversible byte-to-character table used by byte-level BPE vocabularies: printable bytes map to
/// themselves, the rest to U+0100 and up, so every vocabulary string is one character per byte.
/// </summary>
static class ByteLevelAlphabet
{
    public static readonly char[] ByteToChar = Build();
    static readonly Dictionary<char, byte> CharToByte = ByteToChar.Select((c, b) => (c, b)).ToDictionary(p => p.c, p => (byte)p.b);

    static char[] Build()
    {
        var map = new char[256];
        var next = 256;
        for (var b = 0; b < 256; b++)
        {
            var printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
            map[b] = printable ? (char)b : (char)next++;
        }
        return map;
    }

    /// <summary>The raw bytes of a byte-level vocabulary string, or null if it holds a character outside the table.</summary>
    public static byte[]? ToBytes(string token)
    {
        var bytes = new byte[token.Length];
        for (var i = 0; i < token.Length; i++)
        {
            if (!CharToByte.TryGetValue(token[i], out var b)) return null;
            bytes[i] = b;
        }
        return bytes;
    }
}
