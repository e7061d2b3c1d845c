using System.Globalization;
using System.Text;

namespace Qwen35.Safety.Judging;

/// <summary>
/// Python 3's <c>repr()</c> of a <c>str</c> and of a one-element <c>list</c>, byte for byte. llm-jp-judge v2.0.0
/// fills its judge templates with <c>str.format(question=res.prompt, ...)</c> where each value is a list, so the judge
/// sees <c>['質問…']</c>; reproducing its scores means reproducing that text (docs/safety-eval.md).
/// </summary>
public static class PythonRepr
{
    /// <summary><c>repr([value])</c>; a null value is Python's <c>[None]</c> (a failed generation).</summary>
    public static string List(string? value) => "[" + (value is null ? "None" : Str(value)) + "]";

    /// <summary>
    /// <c>repr(value)</c>: single quotes unless the text holds a <c>'</c> and no <c>"</c>; backslash, the chosen quote,
    /// <c>\t \n \r</c> escaped; other characters that Python's <c>str.isprintable</c> rejects (control, format,
    /// surrogate, private-use, unassigned, and every separator but the ASCII space, e.g. U+3000 IDEOGRAPHIC SPACE) as
    /// <c>\xhh</c>, <c>\uhhhh</c> or <c>\Uhhhhhhhh</c>; everything else, Japanese included, as it is.
    /// </summary>
    public static string Str(string value)
    {
        var quote = value.Contains('\'') && !value.Contains('"') ? '"' : '\'';
        var sb = new StringBuilder(value.Length + 2).Append(quote);
        for (var i = 0; i < value.Length; i++)
        {
            int cp = value[i];
            if (char.IsHighSurrogate(value[i]) && i + 1 < value.Length && char.IsLowSurrogate(value[i + 1]))
                cp = char.ConvertToUtf32(value[i], value[++i]);
            switch (cp)
            {
                case '\\': sb.Append(@"\\"); continue;
                case '\t': sb.Append(@"\t"); continue;
                case '\n': sb.Append(@"\n"); continue;
                case '\r': sb.Append(@"\r"); continue;
            }
            if (cp == quote) sb.Append('\\').Append(quote);
            else if (IsPrintable(cp)) sb.Append(char.ConvertFromUtf32(cp));
            else if (cp < 0x100) sb.Append(@"\x").Append(cp.ToString("x2", CultureInfo.InvariantCulture));
            else if (cp < 0x10000) sb.Append(@"\u").Append(cp.ToString("x4", CultureInfo.InvariantCulture));
            else sb.Append(@"\U").Append(cp.ToString("x8", CultureInfo.InvariantCulture));
        }
        return sb.Append(quote).ToString();
    }

    /// <summary>CPython's <c>Py_UNICODE_ISPRINTABLE</c>: not in Cc, Cf, Cs, Co, Cn, Zl, Zp, Zs, except the space.
    /// (.NET's Unicode tables may be a version apart from the Python that ran llm-jp-judge for characters assigned in
    /// between; AnswerCarefully's text does not use such characters.)</summary>
    static bool IsPrintable(int cp)
    {
        if (cp == ' ') return true;
        if (cp is >= 0xD800 and <= 0xDFFF) return false;   // a lone surrogate
        return CharUnicodeInfo.GetUnicodeCategory(cp) switch
        {
            UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.Surrogate or UnicodeCategory.PrivateUse
                or UnicodeCategory.OtherNotAssigned or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator
                or UnicodeCategory.SpaceSeparator => false,
            _ => true,
        };
    }
}
