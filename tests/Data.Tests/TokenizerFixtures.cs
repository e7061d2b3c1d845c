using System.Text.Json.Nodes;
using Qwen35.Data;
using Qwen35.Tests;

namespace Qwen35.Data.Tests;

/// <summary>Golden tokenizer/chat fixtures (tests/fixtures/tokenizer) and the shared Qwen3 tokenizer, loaded once.</summary>
static class TokenizerFixtures
{
    static readonly Lazy<JsonObject> CasesJson = new(() => Load("cases.json"));
    static readonly Lazy<JsonObject> ChatJson = new(() => Load("chat.json"));
    static QwenTokenizer? _qwen3;

    static JsonObject Load(string name) =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(TestPaths.Fixtures, "tokenizer", name)))!.AsObject();

    public static IEnumerable<JsonObject> Cases => CasesJson.Value["cases"]!.AsArray().Select(n => n!.AsObject());

    public static IEnumerable<JsonObject> Conversations => ChatJson.Value["conversations"]!.AsArray().Select(n => n!.AsObject());

    public static JsonObject Case(string id) => Cases.Single(c => (string)c["id"]! == id);

    public static JsonObject Conversation(string id) => Conversations.Single(c => (string)c["id"]! == id);

    public static IEnumerable<string> CaseIds => Cases.Select(c => (string)c["id"]!);

    /// <summary>"conversationId/mode" for every one of the 65 renders.</summary>
    public static IEnumerable<string> RenderIds =>
        Conversations.SelectMany(c => c["renders"]!.AsObject().Select(r => $"{c["id"]}/{r.Key}"));

    public static (JsonObject Conversation, JsonObject Render) Render(string renderId)
    {
        var parts = renderId.Split('/');
        var conv = Conversation(parts[0]);
        return (conv, conv["renders"]![parts[1]]!.AsObject());
    }

    public static int[] Ids(JsonNode expected) => expected["qwen3"]!["ids"]!.AsArray().Select(x => (int)x!).ToArray();

    /// <summary>The real Qwen3 tokenizer (11 MB, read from ../shared; Ignored with the reason when absent).</summary>
    public static QwenTokenizer Qwen3
    {
        get
        {
            var path = TestPaths.RequireShared("fixtures", "tokenizer", "qwen3", "tokenizer.json");
            return _qwen3 ??= QwenTokenizer.FromFolder(Path.GetDirectoryName(path)!);
        }
    }
}
