using System.Text.Json.Nodes;
using Qwen35.Safety.Output;

namespace Qwen35.Safety.Generation;

/// <summary>One row of generations.jsonl: the question, its reference and the model's answer (null when every
/// attempt failed; llm-jp-judge then judges the answer <c>[None]</c>).</summary>
public sealed record GeneratedAnswer(string Id, string? Category, string Prompt, string Reference, string? Response)
{
    public JsonObject ToJson() => new()
    {
        ["ID"] = Id,
        ["category"] = Category,
        ["prompt"] = Prompt,
        ["reference"] = Reference,
        ["response"] = Response,
    };

    public static GeneratedAnswer FromJson(JsonObject row, string path, long line) => new(
        JsonlFile.RequiredString(row, "ID", path, line),
        JsonlFile.OptionalString(row, "category", path, line),
        JsonlFile.RequiredString(row, "prompt", path, line),
        JsonlFile.RequiredString(row, "reference", path, line),
        JsonlFile.OptionalString(row, "response", path, line));

    public static List<GeneratedAnswer> ReadAll(string path) =>
        JsonlFile.Read(path).Select(r => FromJson(r.Row, path, r.Line)).ToList();
}
