using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace Qwen35.Lora;

/// <summary>
/// Writes JSON the way Python's <c>json.dumps(obj, indent=2, sort_keys=True)</c> does (what PEFT's
/// <c>save_pretrained</c> produces), so our adapter_config.json is byte-comparable with PEFT's: two-space indent,
/// <c>"key": value</c>, empty containers as <c>{}</c>/<c>[]</c>, floats with a decimal point (<c>0.0</c>), keys sorted
/// by code point at every level, everything outside printable ASCII (space to ~) escaped as <c>\uXXXX</c>.
/// </summary>
public static class PythonJson
{
    /// <summary>Serialises a node tree (JsonObject, JsonArray, JsonValue of string/bool/long/int/double, or null).</summary>
    public static string Serialize(JsonNode? node)
    {
        var sb = new StringBuilder();
        Write(sb, node, 0);
        return sb.ToString();
    }

    static void Write(StringBuilder sb, JsonNode? node, int depth)
    {
        switch (node)
        {
            case null: sb.Append("null"); break;
            case JsonObject obj:
                if (obj.Count == 0) { sb.Append("{}"); break; }
                sb.Append("{\n");
                var first = true;
                foreach (var (k, v) in obj.OrderBy(p => p.Key, StringComparer.Ordinal))
                {
                    if (!first) sb.Append(",\n");
                    first = false;
                    sb.Append(' ', 2 * (depth + 1)).Append(Quote(k)).Append(": ");
                    Write(sb, v, depth + 1);
                }
                sb.Append('\n').Append(' ', 2 * depth).Append('}');
                break;
            case JsonArray arr:
                if (arr.Count == 0) { sb.Append("[]"); break; }
                sb.Append("[\n");
                for (var i = 0; i < arr.Count; i++)
                {
                    if (i > 0) sb.Append(",\n");
                    sb.Append(' ', 2 * (depth + 1));
                    Write(sb, arr[i], depth + 1);
                }
                sb.Append('\n').Append(' ', 2 * depth).Append(']');
                break;
            case JsonValue val:
                if (val.TryGetValue<string>(out var s)) sb.Append(Quote(s));
                else if (val.TryGetValue<bool>(out var b)) sb.Append(b ? "true" : "false");
                else if (val.TryGetValue<int>(out var i32)) sb.Append(i32.ToString(CultureInfo.InvariantCulture));
                else if (val.TryGetValue<long>(out var i64)) sb.Append(i64.ToString(CultureInfo.InvariantCulture));
                else if (val.TryGetValue<double>(out var d)) sb.Append(Float(d));
                else sb.Append(val.ToJsonString());
                break;
        }
    }

    /// <summary>Python's <c>repr(float)</c>: shortest round-trip digits, ".0" on integral values, "1e-05" style exponents.</summary>
    public static string Float(double d)
    {
        if (double.IsNaN(d)) return "NaN";
        if (double.IsInfinity(d)) return d > 0 ? "Infinity" : "-Infinity";
        var r = d.ToString("R", CultureInfo.InvariantCulture);
        var abs = Math.Abs(d);
        // Python switches to exponent notation below 1e-4 and from 1e16 on; .NET's thresholds differ.
        if (abs != 0 && (abs < 1e-4 || abs >= 1e16))
        {
            var e = d.ToString("E16", CultureInfo.InvariantCulture);
            var exp = int.Parse(e[(e.IndexOf('E') + 1)..], CultureInfo.InvariantCulture);
            // The shortest round-trip digits come from "R"; only their layout changes.
            var digits = r.TrimStart('-');
            var ePos = digits.IndexOfAny(['E', 'e']);
            if (ePos >= 0) digits = digits[..ePos];
            digits = digits.Replace(".", "").TrimStart('0').TrimEnd('0');
            if (digits.Length == 0) digits = "0";
            var mantissa = digits.Length == 1 ? digits : digits[0] + "." + digits[1..];
            return (d < 0 ? "-" : "") + mantissa + "e" + (exp < 0 ? "-" : "+") + Math.Abs(exp).ToString("00", CultureInfo.InvariantCulture);
        }
        if (r.Contains('E')) r = d.ToString("F17", CultureInfo.InvariantCulture).TrimEnd('0');
        if (!r.Contains('.')) r += ".0";
        if (r.EndsWith('.')) r += "0";
        return r;
    }

    static string Quote(string s)
    {
        var sb = new StringBuilder("\"");
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
                    if (c < 0x20 || c > 0x7e) sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    else sb.Append(c);
                    break;
            }
        }
        return sb.Append('"').ToString();
    }
}
