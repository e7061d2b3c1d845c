using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Qwen35.Data;

/// <summary>
/// The two Python conversions the Qwen3.5 template applies to tool data: <c>tojson</c> (transformers' filter =
/// <c>json.dumps(x, ensure_ascii=False)</c>, separators ", " and ": ", key order kept) and <c>|string</c>
/// (Python <c>str()</c>: True/False/None, floats as Python's repr).
/// </summary>
static class PythonJson
{
    public static string Dumps(JsonNode? node)
    {
        var sb = new StringBuilder();
        Write(node, sb);
        return sb.ToString();
    }

    /// <summary>Python <c>str(value)</c> of a JSON scalar (strings verbatim).</summary>
    public static string Str(JsonNode? node) => node switch
    {
        null => "None",
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        JsonValue v when v.GetValueKind() == JsonValueKind.True => "True",
        JsonValue v when v.GetValueKind() == JsonValueKind.False => "False",
        JsonValue v when v.GetValueKind() == JsonValueKind.Number => Number(v),
        _ => Dumps(node),
    };

    static void Write(JsonNode? node, StringBuilder sb)
    {
        switch (node)
        {
            case null: sb.Append("null"); break;
            case JsonObject o:
                sb.Append('{');
                var first = true;
                foreach (var (k, v) in o)
                {
                    if (!first) sb.Append(", ");
                    first = false;
                    String(k, sb);
                    sb.Append(": ");
                    Write(v, sb);
                }
                sb.Append('}');
                break;
            case JsonArray a:
                sb.Append('[');
                for (var i = 0; i < a.Count; i++)
                {
                    if (i > 0) sb.Append(", ");
                    Write(a[i], sb);
                }
                sb.Append(']');
                break;
            case JsonValue v:
                switch (v.GetValueKind())
                {
                    case JsonValueKind.String: String(v.GetValue<string>(), sb); break;
                    case JsonValueKind.True: sb.Append("true"); break;
                    case JsonValueKind.False: sb.Append("false"); break;
                    case JsonValueKind.Number: sb.Append(Number(v)); break;
                    default: sb.Append("null"); break;
                }
                break;
        }
    }

    static string Number(JsonValue v)
    {
        var raw = v.ToJsonString();
        if (!raw.Contains('.') && !raw.Contains('e') && !raw.Contains('E')) return raw; // Python int
        var d = double.Parse(raw, CultureInfo.InvariantCulture);
        if (double.IsInfinity(d)) return d > 0 ? "Infinity" : "-Infinity";
        // Python repr: shortest round-trip digits; plain notation for 1e-4 <= |d| < 1e16, else d.ddde+XX.
        var abs = Math.Abs(d);
        if (abs == 0 || (abs >= 1e-4 && abs < 1e16))
        {
            var s = d.ToString("R", CultureInfo.InvariantCulture);
            if (s.Contains('E')) s = decimal.Parse(s, NumberStyles.Float, CultureInfo.InvariantCulture).ToString(CultureInfo.InvariantCulture);
            return s.Contains('.') ? s : s + ".0";
        }
        var r = d.ToString("R", CultureInfo.InvariantCulture); // .NET writes 1E+20 or 1.5E-05 here
        var parts = r.Split('E');
        if (parts.Length == 1) return r.Contains('.') ? r : r + ".0";
        var exp = int.Parse(parts[1], CultureInfo.InvariantCulture);
        return $"{parts[0]}e{(exp < 0 ? "-" : "+")}{Math.Abs(exp):00}";
    }

    static void String(string s, StringBuilder sb)
    {
        sb.Append('"');
        foreach (var c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                default:
                    if (c < 0x20) sb.Append("\\u").Append(((int)c).ToString("x4"));
                    else sb.Append(c); // ensure_ascii=False: everything else verbatim (lone surrogates too)
                    break;
            }
        }
        sb.Append('"');
    }
}
