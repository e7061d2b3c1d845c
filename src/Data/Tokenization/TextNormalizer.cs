using System.Globalization;
using System.Text;

namespace Qwen35.Data;

/// <summary>
/// The <c>normalizer</c> of a tokenizer.json (null, NFC, NFD, NFKC, NFKD, or a Sequence of those) applied to one
/// plain-text piece, with a map from normalised characters back to the original ones so token offsets can point
/// into the caller's string.
/// </summary>
sealed class TextNormalizer
{
    readonly NormalizationForm[] _forms;

    TextNormalizer(NormalizationForm[] forms) => _forms = forms;

    public static readonly TextNormalizer None = new([]);

    public bool IsIdentity => _forms.Length == 0;

    /// <summary>Reads a tokenizer.json <c>normalizer</c> node; other normaliser types are refused with the file named.</summary>
    public static TextNormalizer FromJson(System.Text.Json.JsonElement? node, string source)
    {
        if (node is null || node.Value.ValueKind == System.Text.Json.JsonValueKind.Null) return None;
        var forms = new List<NormalizationForm>();
        Collect(node.Value, forms, source);
        return new TextNormalizer(forms.ToArray());
    }

    static void Collect(System.Text.Json.JsonElement node, List<NormalizationForm> forms, string source)
    {
        var type = node.TryGetProperty("type", out var t) ? t.GetString() : null;
        switch (type)
        {
            case "NFC": forms.Add(NormalizationForm.FormC); break;
            case "NFD": forms.Add(NormalizationForm.FormD); break;
            case "NFKC": forms.Add(NormalizationForm.FormKC); break;
            case "NFKD": forms.Add(NormalizationForm.FormKD); break;
            case "Sequence":
                foreach (var child in node.GetProperty("normalizers").EnumerateArray()) Collect(child, forms, source);
                break;
            default:
                throw new UserInputException($"{source}: normalizer type '{type}' is not supported (supported: null, NFC, NFD, NFKC, NFKD, Sequence of these)");
        }
    }

    public string Apply(string text)
    {
        foreach (var form in _forms) text = text.Normalize(form);
        return text;
    }

    /// <summary>
    /// Normalises <paramref name="piece"/>. When the text changes, <paramref name="startMap"/>/<paramref name="endMap"/>
    /// give for each normalised character the [start, end) of the original text element (grapheme cluster) it came
    /// from, relative to the piece; both are null when the piece is unchanged (the identity map).
    /// </summary>
    public string Normalize(string piece, out int[]? startMap, out int[]? endMap)
    {
        startMap = endMap = null;
        if (IsIdentity) return piece;
        var normalized = Apply(piece);
        if (string.Equals(normalized, piece, StringComparison.Ordinal)) return piece;

        // Unicode normalisation composes/decomposes only within a combining sequence, which lies inside one
        // grapheme cluster, so normalising cluster by cluster gives the same text and an exact element map.
        var sb = new StringBuilder(normalized.Length);
        var starts = new List<int>(normalized.Length);
        var ends = new List<int>(normalized.Length);
        var enumerator = StringInfo.GetTextElementEnumerator(piece);
        while (enumerator.MoveNext())
        {
            var start = enumerator.ElementIndex;
            var element = (string)enumerator.Current;
            var n = Apply(element);
            sb.Append(n);
            for (var k = 0; k < n.Length; k++) { starts.Add(start); ends.Add(start + element.Length); }
        }
        if (!string.Equals(sb.ToString(), normalized, StringComparison.Ordinal))
        {
            // Not expected for NFC/NFD; if it happens, map every normalised char to the whole piece (coarse but safe).
            startMap = Enumerable.Repeat(0, normalized.Length).ToArray();
            endMap = Enumerable.Repeat(piece.Length, normalized.Length).ToArray();
            return normalized;
        }
        startMap = starts.ToArray();
        endMap = ends.ToArray();
        return normalized;
    }
}
