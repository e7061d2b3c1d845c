using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Qwen35.Safety.Output;

/// <summary>The run's JSONL files: one JSON object per line, written as Python's <c>json.dumps(row,
/// ensure_ascii=False)</c> writes it (llm-jp-judge's <c>utils/data.py</c>), always whole and via a temporary file.</summary>
public static class JsonlFile
{
    public static void Write(string path, IEnumerable<JsonObject> rows)
    {
        var sb = new StringBuilder();
        foreach (var row in rows) sb.Append(PythonJson.Dumps(row, ensureAscii: false)).Append('\n');
        AtomicFile.WriteAllText(path, sb.ToString());
    }

    /// <summary>The rows of a file this harness wrote (none when it does not exist); a line that is not a JSON
    /// object is bad input naming the file and line.</summary>
    public static List<(long Line, JsonObject Row)> Read(string path)
    {
        var rows = new List<(long, JsonObject)>();
        if (!File.Exists(path)) return rows;
        long n = 0;
        foreach (var line in File.ReadLines(path, new UTF8Encoding(false, true)))
        {
            n++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            JsonNode? node;
            try { node = JsonNode.Parse(line); }
            catch (JsonException e) { throw new UserInputException($"{path} line {n}: not JSON ({e.Message})"); }
            if (node is not JsonObject o) throw new UserInputException($"{path} line {n}: expected a JSON object");
            rows.Add((n, o));
        }
        return rows;
    }

    public static string RequiredString(JsonObject row, string key, string path, long line) =>
        row[key] is JsonValue v && v.TryGetValue<string>(out var s) ? s
            : throw new UserInputException($"{path} line {line}: {key}: expected a string");

    public static string? OptionalString(JsonObject row, string key, string path, long line) => row[key] switch
    {
        null => null,
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        _ => throw new UserInputException($"{path} line {line}: {key}: expected a string or null"),
    };
}
