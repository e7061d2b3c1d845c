namespace Qwen35.Data;

/// <summary>
/// Finds added tokens (<c>&lt;|im_start|&gt;</c>, <c>&lt;think&gt;</c>, ...) in raw text, leftmost-longest like the
/// Hugging Face tokenizers' Aho-Corasick matcher. Matching is ordinal and case-sensitive, so near misses such as
/// <c>&lt;|IM_END|&gt;</c> or <c>&lt;think &gt;</c> stay ordinary text.
/// </summary>
sealed class AddedTokenMatcher
{
    /// <summary>A run of the input: either one added token (Id &gt;= 0) or plain text to run through BPE (Id = -1).</summary>
    public readonly record struct Segment(int Start, int End, int Id)
    {
        public bool IsAdded => Id >= 0;
    }

    // Candidates grouped by first character, longest first, so the first hit at a position is the longest.
    readonly Dictionary<char, (string Content, int Id)[]> _byFirstChar;

    public AddedTokenMatcher(IEnumerable<KeyValuePair<string, int>> tokens)
    {
        _byFirstChar = tokens
            .Where(t => t.Key.Length > 0)
            .GroupBy(t => t.Key[0])
            .ToDictionary(g => g.Key, g => g.OrderByDescending(t => t.Key.Length).Select(t => (t.Key, t.Value)).ToArray());
    }

    public List<Segment> Split(string text)
    {
        var segments = new List<Segment>();
        var plainStart = 0;
        var i = 0;
        while (i < text.Length)
        {
            if (_byFirstChar.TryGetValue(text[i], out var candidates))
            {
                var matched = false;
                foreach (var (content, id) in candidates)
                {
                    if (content.Length > text.Length - i || string.CompareOrdinal(text, i, content, 0, content.Length) != 0) continue;
                    if (i > plainStart) segments.Add(new Segment(plainStart, i, -1));
                    segments.Add(new Segment(i, i + content.Length, id));
                    i += content.Length;
                    plainStart = i;
                    matched = true;
                    break;
                }
                if (matched) continue;
            }
            i++;
        }
        if (text.Length > plainStart) segments.Add(new Segment(plainStart, text.Length, -1));
        return segments;
    }
}
