namespace Qwen35.Data;

/// <summary>Python string semantics the chat template relies on (Jinja's <c>trim</c> is Python's <c>str.strip()</c>).</summary>
static class PyText
{
    /// <summary>Python's <c>str.isspace()</c> for one UTF-16 unit: .NET's white space plus U+001C..U+001F.</summary>
    public static bool IsSpace(char c) => char.IsWhiteSpace(c) || (c >= '\u001C' && c <= '\u001F');

    /// <summary><c>str.strip()</c> as a range: the start index and length of the stripped text.</summary>
    public static (int Start, int Length) StripRange(string s, int start, int length)
    {
        var a = start;
        var b = start + length;
        while (a < b && IsSpace(s[a])) a++;
        while (b > a && IsSpace(s[b - 1])) b--;
        return (a, b - a);
    }

    public static string Strip(string s)
    {
        var (a, n) = StripRange(s, 0, s.Length);
        return s.Substring(a, n);
    }
}
