using System.Text.Json;

namespace Qwen35.Cli.Commands;

/// <summary>Small shared pieces of the verbs.</summary>
static class CliParsing
{
    /// <summary>Writes an indented JSON report atomically (a reader never sees half a file).</summary>
    public static void WriteJsonAtomically(string path, object value) =>
        AtomicFile.WriteAllText(path, JsonSerializer.Serialize(value, new JsonSerializerOptions { WriteIndented = true }));
}
