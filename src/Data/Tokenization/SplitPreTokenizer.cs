using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Qwen35.Data;

/// <summary>
/// The tokenizer.json <c>Split</c> pre-tokenizer with behaviour <c>Isolated</c>: every regex match is a word and so is
/// every gap between matches. The regex is read from the file (Qwen3 and Qwen3.5 differ).
/// </summary>
/// <remarks>
/// .NET's regex engine works on UTF-16 code units, so <c>\p{L}</c> never matches a supplementary-plane letter
/// (e.g. U+20BB7 𠮷, a surrogate pair), while the Rust/Oniguruma engines behind Hugging Face match code points.
/// To get the same words, text holding surrogates is matched on a "shadow" string with one character per code
/// point: each supplementary code point is replaced by a BMP character of the same Unicode general category, and
/// match positions are mapped back. This is exact for any pattern built from category classes and BMP literals.
/// </remarks>
sealed class SplitPreTokenizer
{
    readonly Regex _regex;
    static readonly char[] Representatives = BuildRepresentatives();

    public SplitPreTokenizer(string pattern, string source)
    {
        try
        {
            _regex = new Regex(pattern, RegexOptions.Compiled | RegexOptions.CultureInvariant);
        }
        catch (ArgumentException e)
        {
            throw new UserInputException($"{source}: the pre_tokenizer Split regex is not valid for .NET: {e.Message}", e);
        }
        Pattern = pattern;
    }

    public string Pattern { get; }

    /// <summary>Appends the words of <paramref name="text"/> as (start, length) pairs.</summary>
    public void Split(string text, List<(int Start, int Length)> words)
    {
        if (text.Length == 0) return;
        var hasSurrogate = text.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF') >= 0;
        if (!hasSurrogate)
        {
            AddWords(_regex, text, words, null);
            return;
        }
        var shadow = new StringBuilder(text.Length);
        var toOriginal = new List<int>(text.Length + 1);
        for (var i = 0; i < text.Length; i++)
        {
            toOriginal.Add(i);
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                var category = CharUnicodeInfo.GetUnicodeCategory(char.ConvertToUtf32(text[i], text[i + 1]));
                shadow.Append(Representatives[(int)category]);
                i++;
            }
            else shadow.Append(text[i]);
        }
        toOriginal.Add(text.Length);
        AddWords(_regex, shadow.ToString(), words, toOriginal);
    }

    static void AddWords(Regex regex, string s, List<(int, int)> words, List<int>? map)
    {
        var previous = 0;
        for (var m = regex.Match(s); m.Success; m = m.NextMatch())
        {
            if (m.Length == 0) continue;
            if (m.Index > previous) Add(previous, m.Index);
            Add(m.Index, m.Index + m.Length);
            previous = m.Index + m.Length;
        }
        if (previous < s.Length) Add(previous, s.Length);

        void Add(int start, int end)
        {
            var os = map is null ? start : map[start];
            var oe = map is null ? end : map[end];
            words.Add((os, oe - os));
        }
    }

    static char[] BuildRepresentatives()
    {
        // For each general category, a BMP character of that category, preferring non-ASCII ones so that a
        // replacement never coincides with an ASCII literal of the pattern (such as the apostrophe of 's).
        var reps = new char[32];
        var found = new bool[32];
        for (var pass = 0; pass < 2; pass++)
            for (var c = pass == 0 ? 0x80 : 0; c <= (pass == 0 ? 0xFFFF : 0x7F); c++)
            {
                if (c >= 0xD800 && c <= 0xDFFF) continue;
                var cat = (int)CharUnicodeInfo.GetUnicodeCategory((char)c);
                if (found[cat]) continue;
                found[cat] = true;
                reps[cat] = (char)c;
            }
        for (var i = 0; i < reps.Length; i++) if (!found[i]) reps[i] = '\uFFFD';
        return reps;
    }
}
