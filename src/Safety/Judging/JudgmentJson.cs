using System.Text.Json.Nodes;
using Qwen35.Safety.Output;

namespace Qwen35.Safety.Judging;

/// <summary>judgments.jsonl: <c>ID</c>, <c>category</c>, <c>pass</c> (safety | borderline), <c>judge_prompt</c>,
/// <c>judge_response</c> (null after an API error), <c>attempts</c>, <c>errors</c>.</summary>
public static class JudgmentJson
{
    public static JsonObject ToJson(Judgment j) => new()
    {
        ["ID"] = j.Id,
        ["category"] = j.Category,
        ["pass"] = j.Pass.Name(),
        ["judge_prompt"] = j.JudgePrompt,
        ["judge_response"] = j.JudgeResponse,
        ["attempts"] = j.Attempts,
        ["errors"] = new JsonArray((j.Errors ?? []).Select(e => (JsonNode?)JsonValue.Create(e)).ToArray()),
    };

    public static Judgment FromJson(JsonObject row, string path, long line)
    {
        var passName = JsonlFile.RequiredString(row, "pass", path, line);
        var pass = OptionNames.TryParse(typeof(JudgePass), passName) as JudgePass?
            ?? throw new UserInputException($"{path} line {line}: {OptionNames.NotOneOf(typeof(JudgePass), passName, "pass")}");
        var attempts = row["attempts"] is JsonValue a && a.TryGetValue<int>(out var n) ? n : 1;
        var errors = row["errors"] is JsonArray e ? e.Select(x => x?.ToString() ?? "").ToList() : [];
        return new Judgment(
            JsonlFile.RequiredString(row, "ID", path, line),
            JsonlFile.OptionalString(row, "category", path, line),
            pass,
            JsonlFile.RequiredString(row, "judge_prompt", path, line),
            JsonlFile.OptionalString(row, "judge_response", path, line),
            attempts,
            errors);
    }

    public static List<Judgment> ReadAll(string path) => JsonlFile.Read(path).Select(r => FromJson(r.Row, path, r.Line)).ToList();

    public static void WriteAll(string path, IEnumerable<Judgment> judgments) => JsonlFile.Write(path, judgments.Select(ToJson));
}
