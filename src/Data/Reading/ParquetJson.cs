using System.Collections;
using System.Globalization;
using System.Text.Json.Nodes;

namespace Qwen35.Data;

/// <summary>Parquet.Net's untyped rows (dictionaries, lists, CLR scalars) as JSON nodes, so one row parser serves both formats.</summary>
static class ParquetJson
{
    public static JsonObject ToJsonObject(IDictionary<string, object> row)
    {
        var o = new JsonObject();
        foreach (var (k, v) in row) o[k] = ToNode(v);
        return o;
    }

    static JsonNode? ToNode(object? v) => v switch
    {
        null => null,
        string s => JsonValue.Create(s),
        bool b => JsonValue.Create(b),
        int i => JsonValue.Create(i),
        long l => JsonValue.Create(l),
        short s16 => JsonValue.Create((int)s16),
        byte u8 => JsonValue.Create((int)u8),
        sbyte s8 => JsonValue.Create((int)s8),
        uint u32 => JsonValue.Create(u32),
        ulong u64 => JsonValue.Create(u64),
        float f => JsonValue.Create(f),
        double d => JsonValue.Create(d),
        decimal m => JsonValue.Create(m),
        DateTime dt => JsonValue.Create(dt.ToString("O", CultureInfo.InvariantCulture)),
        DateTimeOffset dto => JsonValue.Create(dto.ToString("O", CultureInfo.InvariantCulture)),
        byte[] bytes => JsonValue.Create(Convert.ToBase64String(bytes)),
        IDictionary<string, object> dict => ToJsonObject(dict),
        IDictionary dict => new JsonObject(dict.Keys.Cast<object>().Select(k => KeyValuePair.Create(k.ToString()!, ToNode(dict[k])))),
        IEnumerable list => new JsonArray(list.Cast<object?>().Select(ToNode).ToArray()),
        _ => JsonValue.Create(v.ToString()),
    };
}
