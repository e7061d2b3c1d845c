using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Qwen35;

/// <summary>
/// Python's <c>json.dumps</c> and <c>str()</c> over a <see cref="JsonNode"/> tree, byte for byte, for the two places
/// that must match Python output: PEFT's adapter_config.json (<c>json.dumps(obj, indent=2, sort_keys=True)</c>, what
/// <c>save_pretrained</c> writes) and the Qwen3.5 chat template's <c>tojson</c> filter (transformers' filter =
/// <c>json.dumps(x, ensure_ascii=False)</c>) and <c>|string</c> (Python <c>str()</c>).
/// </summary>
public static class PythonJson
{
    /// <summary>
    /// <c>json.dumps(node, ensure_ascii=ensureAscii, indent=indent, sort_keys=sortKeys)</c>, defaults as in Python.
    /// Without <paramref name="indent"/> the separators are ", " and ": "; with it, one item per line indented by
    /// that many spaces per level, empty containers as <c>{}</c>/<c>[]</c>. <paramref name="sortKeys"/> sorts keys by
    /// code point at every level (else insertion order). <paramref name="ensureAscii"/> escapes everything outside
    /// printable ASCII (space to ~) as <c>\uXXXX</c>; without it only control characters are escaped. Numbers: a C#
    /// <see cref="double"/> is a Python float (<see cref="Float"/>); parsed JSON keeps its text when it has no '.',
    /// 'e' or 'E' (a Python int), else it is a float.
    /// </summary>
    public static string Dumps(JsonNode? node, bool ensureAscii = true, int? indent = null, bool sortKeys = false)
    {
        var sb = new StringBuilder();
        new Writer(sb, ensureAscii, indent, sortKeys).Write(node, 0);
        return sb.ToString();
    }

    /// <summary>Python <c>str(value)</c> of a JSON scalar (strings verbatim); containers as <c>tojson</c> writes them.</summary>
    public static string Str(JsonNode? node) => node switch
    {
        null => "None",
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        JsonValue v when v.GetValueKind() == JsonValueKind.True => "True",
        JsonValue v when v.GetValueKind() == JsonValueKind.False => "False",
        JsonValue v when v.GetValueKind() == JsonValueKind.Number => Number(v),
        _ => Dumps(node, ensureAscii: false),
    };

    /// <summary>Python's <c>repr(float)</c>: shortest round-trip digits, ".0" on integral values, plain notation for
    /// 1e-4 &lt;= |d| &lt; 1e16, else "1e-05" style exponents.</summary>
    public static string Float(double d)
    {
        if (double.IsNaN(d)) return "NaN";
        if (double.IsInfinity(d)) return d > 0 ? "Infinity" : "-Infinity";
        var abs = Math.Abs(d);
        var r = d.ToString("R", CultureInfo.InvariantCulture); // .NET writes 1E+20 or 1.5E-05 at its own thresholds
        if (abs == 0 || (abs >= 1e-4 && abs < 1e16))
        {
            if (r.Contains('E')) r = decimal.Parse(r, NumberStyles.Float, CultureInfo.InvariantCulture).ToString(CultureInfo.InvariantCulture);
            return r.Contains('.') ? r : r + ".0";
        }
        // The shortest round-trip digits come from "R" (which may be plain here: 1e16 is "10000000000000000"), the
        // exponent from "E16"; only the layout is Python's.
        var e = d.ToString("E16", CultureInfo.InvariantCulture);
        var exp = int.Parse(e[(e.IndexOf('E') + 1)..], CultureInfo.InvariantCulture);
        var digits = r.TrimStart('-');
        var ePos = digits.IndexOf('E');
        if (ePos >= 0) digits = digits[..ePos];
        digits = digits.Replace(".", "").TrimStart('0').TrimEnd('0');
        if (digits.Length == 0) digits = "0";
        var mantissa = digits.Length == 1 ? digits : digits[0] + "." + digits[1..];
        return $"{(d < 0 ? "-" : "")}{mantissa}e{(exp < 0 ? "-" : "+")}{Math.Abs(exp):00}";
    }

    static string Number(JsonValue v)
    {
        if (v.TryGetValue<double>(out var d) && !v.TryGetValue<JsonElement>(out _)) return Float(d);
        var raw = v.ToJsonString();
        if (!raw.Contains('.') && !raw.Contains('e') && !raw.Contains('E')) return raw; // Python int
        return Float(double.Parse(raw, CultureInfo.InvariantCulture));
    }

    readonly record struct Writer(StringBuilder Sb, bool EnsureAscii, int? Indent, bool SortKeys)
    {
        public void Write(JsonNode? node, int depth)
        {
            switch (node)
            {
                case null: Sb.Append("null"); break;
                case JsonObject o:
                    if (o.Count == 0) { Sb.Append("{}"); break; }
                    Sb.Append('{');
                    var first = true;
                    foreach (var (k, v) in SortKeys ? o.OrderBy(p => p.Key, StringComparer.Ordinal) : o.AsEnumerable())
                    {
                        Separator(first, depth + 1);
                        first = false;
                        String(k);
                        Sb.Append(": ");
                        Write(v, depth + 1);
                    }
                    Close('}', depth);
                    break;
                case JsonArray a:
                    if (a.Count == 0) { Sb.Append("[]"); break; }
                    Sb.Append('[');
                    for (var i = 0; i < a.Count; i++)
                    {
                        Separator(i == 0, depth + 1);
                        Write(a[i], depth + 1);
                    }
                    Close(']', depth);
                    break;
                case JsonValue v:
                    switch (v.GetValueKind())
                    {
                        case JsonValueKind.String: String(v.GetValue<string>()); break;
                        case JsonValueKind.True: Sb.Append("true"); break;
                        case JsonValueKind.False: Sb.Append("false"); break;
                        case JsonValueKind.Number: Sb.Append(Number(v)); break;
                        default: Sb.Append("null"); break;
                    }
                    break;
            }
        }

        // Before an item: "," between items, then (indented) a new line at the item's depth, or (compact) a space.
        void Separator(bool first, int depth)
        {
            if (!first) Sb.Append(',');
            if (Indent is { } n) Sb.Append('\n').Append(' ', n * depth);
            else if (!first) Sb.Append(' ');
        }

        void Close(char bracket, int depth)
        {
            if (Indent is { } n) Sb.Append('\n').Append(' ', n * depth);
            Sb.Append(bracket);
        }

        void String(string s)
        {
            Sb.Append('"');
            foreach (var c in s)
            {
                switch (c)
                {
                    case '"': Sb.Append("\\\""); break;
                    case '\\': Sb.Append("\\\\"); break;
                    case '\n': Sb.Append("\\n"); break;
                    case '\r': Sb.Append("\\r"); break;
                    case '\t': Sb.Append("\\t"); break;
                    case '\b': Sb.Append("\\b"); break;
                    case '\f': Sb.Append("\\f"); break;
                    default:
                        // ensure_ascii=False leaves everything but control characters verbatim (lone surrogates too).
                        if (c < 0x20 || (EnsureAscii && c > 0x7e)) Sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                        else Sb.Append(c);
                        break;
                }
            }
            Sb.Append('"');
        }
    }
}
