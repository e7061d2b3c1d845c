using System.Text.Json.Nodes;
using Qwen35.Data;
using Qwen35.Tests;

namespace Qwen35.Data.Tests;

/// <summary>
/// llama.cpp's vocab test for its <c>qwen35</c> pre-tokenizer (tests/fixtures/tokenizer/qwen3.5_reference_ids) uses
/// a Qwen2/Qwen3 vocabulary with Qwen3.5's regex (combining marks stay with letters) and no NFC. Loading the Qwen3
/// tokenizer.json with just those two fields changed must reproduce every published id list, which shows the
/// loader takes regex and normaliser from the file.
/// </summary>
public class Qwen35PreTokenizerTests
{
    const string Qwen35Regex = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    static QwenTokenizer? _tokenizer;

    static QwenTokenizer Tokenizer
    {
        get
        {
            if (_tokenizer != null) return _tokenizer;
            var source = TestPaths.RequireShared("fixtures", "tokenizer", "qwen3", "tokenizer.json");
            var root = JsonNode.Parse(File.ReadAllText(source))!.AsObject();
            root["normalizer"] = null;
            root["pre_tokenizer"]!["pretokenizers"]![0]!["pattern"]!["Regex"] = Qwen35Regex;
            var dir = TestPaths.TempDir("qwen35-pretok");
            File.WriteAllText(Path.Combine(dir, "tokenizer.json"), root.ToJsonString());
            return _tokenizer = QwenTokenizer.FromFolder(dir);
        }
    }

    public static IEnumerable<TestCaseData> LlamaCppCases()
    {
        var d = JsonNode.Parse(File.ReadAllText(Path.Combine(TestPaths.Fixtures, "tokenizer", "qwen3.5_reference_ids", "reference_ids.json")))!;
        foreach (var c in d["cases"]!.AsArray().Where(c => (string)c!["source"]! == "llama.cpp"))
            yield return new TestCaseData((string)c!["text"]!, c["published_ids"]!.AsArray().Select(x => (int)x!).ToArray()).SetName($"LlamaCpp_{c["id"]}");
    }

    [TestCaseSource(nameof(LlamaCppCases))]
    public void Qwen35Regex_NoNormalizer_MatchesLlamaCppQwen35Ids(string text, int[] expected)
    {
        Assert.That(Tokenizer.Encode(text), Is.EqualTo(expected));
        Assert.That(Tokenizer.Decode(expected), Is.EqualTo(text), "no normaliser: decode returns the input exactly");
    }
}
