using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Qwen35.Data;

/// <summary>
/// System.Text.Json's parse errors in plain words with a 1-based column in characters, without .NET's
/// "LineNumber: 0 | BytePositionInLine: 50" (0-based, in UTF-8 bytes) that users would otherwise have to decode.
/// </summary>
static partial class JsonErrorText
{
    /// <summary>
    /// Parse options for rows: a duplicate key is a parse error (a <see cref="JsonException"/> with a position) instead
    /// of an <see cref="ArgumentException"/> when the object is first read, which would escape as a crash.
    /// </summary>
    public static readonly JsonDocumentOptions Strict = new() { AllowDuplicateProperties = false };

    /// <summary>
    /// "invalid JSON: unexpected character 'x' at column 51" and the like. <paramref name="text"/> is what was parsed
    /// (to turn the error's byte position into a character column on its line); <paramref name="scope"/> names what
    /// ended too early ("line" for JSONL, "file" for a JSON array file, "string" for a JSON-encoded string).
    /// </summary>
    public static string Describe(JsonException e, string text, string scope = "line")
    {
        var message = LocationSuffix().Replace(e.Message, "").Trim();
        var line = text.Split('\n').ElementAtOrDefault((int)(e.LineNumber ?? 0)) ?? "";
        var column = e.BytePositionInLine is { } b ? Column(line, b) : (long?)null;
        var at = column is { } c ? $" at column {c}" : "";
        var m = Quoted().Match(message);
        var ch = m.Success ? m.Groups["c"].Value : "";
        var rest = m.Success ? message[m.Length..] : "";
        string words;
        if (!m.Success)
            words = message switch
            {
                _ when message.StartsWith("Expected depth to be zero", StringComparison.Ordinal) =>
                    $"the {scope} ends inside an object or list (a '}}' or ']' is missing)",
                _ when message.StartsWith("Expected end of string", StringComparison.Ordinal) =>
                    $"the {scope} ends inside a string (a closing '\"' is missing)",
                _ when message.StartsWith("The input does not contain any JSON tokens", StringComparison.Ordinal) => "no JSON value",
                _ when message.Contains("trailing comma", StringComparison.Ordinal) => $"trailing comma{at} (not allowed in JSON)",
                _ when DuplicateKey().Match(message) is { Success: true } d => $"duplicate key '{d.Groups["k"].Value}'",
                _ => Sentence(message) + at,
            };
        else if (rest.StartsWith(" is an invalid start of a value", StringComparison.Ordinal))
            words = $"unexpected character '{ch}'{at}";
        else if (rest.StartsWith(" is an invalid start of a property name", StringComparison.Ordinal))
            words = $"unexpected character '{ch}'{at} (expected a property name in double quotes)";
        else if (rest.StartsWith(" is invalid after a value", StringComparison.Ordinal))
            words = $"unexpected character '{ch}'{at} (expected ',', '}}' or ']' after a value)";
        else if (rest.StartsWith(" is invalid after a single JSON value", StringComparison.Ordinal))
            words = $"unexpected character '{ch}'{at} (one JSON object per {scope})";
        else if (rest.StartsWith(" is invalid after a property name", StringComparison.Ordinal))
            words = $"unexpected character '{ch}'{at} (expected ':' after a property name)";
        else if (rest.StartsWith(" is invalid within a JSON string", StringComparison.Ordinal))
            words = $"control character {ch} inside a string{at} (write it escaped, e.g. \\n)";
        else if (rest.StartsWith(" is an invalid escapable character", StringComparison.Ordinal))
            words = $"invalid escape '\\{ch}' in a string{at}";
        else if (rest.StartsWith(" is an invalid JSON literal", StringComparison.Ordinal))
            words = $"invalid literal '{ch}'{at} (expected true, false or null)";
        else if (rest.StartsWith(" is invalid without a matching open", StringComparison.Ordinal))
            words = $"'{ch}'{at} closes nothing that was opened";
        else if (rest.StartsWith(" is invalid within a number", StringComparison.Ordinal) || rest.StartsWith(" is invalid at the end of a number", StringComparison.Ordinal))
            words = $"malformed number{at}";
        else
            words = Sentence(message) + at;
        return "invalid JSON: " + words;
    }

    /// <summary>A message we have no words for, without its final full stop and capital.</summary>
    static string Sentence(string message)
    {
        var m = message.TrimEnd('.');
        return m.Length > 1 && char.IsUpper(m[0]) && char.IsLower(m[1]) ? char.ToLowerInvariant(m[0]) + m[1..] : m;
    }

    /// <summary>1-based column in UTF-16 characters of a 0-based UTF-8 byte position within <paramref name="line"/>.</summary>
    static long Column(string line, long bytePosition)
    {
        var bytes = Encoding.UTF8.GetBytes(line);
        var n = (int)Math.Clamp(bytePosition, 0, bytes.Length);
        return Encoding.UTF8.GetCharCount(bytes, 0, n) + 1;
    }

    // ".. Path: $.x | LineNumber: 0 | BytePositionInLine: 50." (Path is present for JsonNode/serializer errors).
    [GeneratedRegex(@"\s*(Path: [^|]*\|\s*)?LineNumber: \d+ \| BytePositionInLine: \d+\.?\s*$")]
    private static partial Regex LocationSuffix();

    [GeneratedRegex(@"^Duplicate property '(?<k>.*?)'")]
    private static partial Regex DuplicateKey();

    [GeneratedRegex(@"^'(?<c>.+?)'(?= is)")]
    private static partial Regex Quoted();
}
