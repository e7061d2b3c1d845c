using System.Text.Json.Nodes;
using Qwen35.Data;
using Qwen35.Tests;

namespace Qwen35.Data.Tests;

/// <summary>
/// A tiny hand-built tokenizer.json (256 byte tokens + a few merges) proves the loader reads the regex, the
/// normaliser and the added tokens from the files rather than assuming Qwen3's.
/// </summary>
public class SyntheticTokenizerTests
{
    const string Qwen3Regex = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    const string Qwen35Regex = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    static string Bl(string s) => new(System.Text.Encoding.UTF8.GetBytes(s).Select(b => ByteLevelAlphabet.ByteToChar[b]).ToArray());

    static string Write(string regex, bool nfc, bool withConfig)
    {
        var dir = TestPaths.TempDir("synthetic-tok");
        var vocab = new JsonObject();
        for (var b = 0; b < 256; b++) vocab[ByteLevelAlphabet.ByteToChar[b].ToString()] = b;
        // Merges building "e" + U+0301 (bytes 65 CC 81) into one token: only possible if the mark stays in e's word.
        var eMark1 = Bl("e") + Bl("\u0301")[0];
        var eMark = Bl("e\u0301");
        vocab[eMark1] = 256;
        vocab[eMark] = 257;
        var merges = new JsonArray(new JsonArray(Bl("e"), Bl("\u0301")[0].ToString()), new JsonArray(eMark1, Bl("\u0301")[1].ToString()));
        var root = new JsonObject
        {
            ["added_tokens"] = new JsonArray(
                new JsonObject { ["id"] = 300, ["content"] = "<|endoftext|>", ["special"] = true },
                new JsonObject { ["id"] = 301, ["content"] = "<|im_end|>", ["special"] = true }),
            ["normalizer"] = nfc ? new JsonObject { ["type"] = "NFC" } : null,
            ["pre_tokenizer"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["pretokenizers"] = new JsonArray(
                    new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = regex }, ["behavior"] = "Isolated", ["invert"] = false },
                    new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["use_regex"] = false }),
            },
            ["model"] = new JsonObject { ["type"] = "BPE", ["vocab"] = vocab, ["merges"] = merges },
        };
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), root.ToJsonString());
        if (withConfig)
            File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), new JsonObject
            {
                ["added_tokens_decoder"] = new JsonObject { ["302"] = new JsonObject { ["content"] = "<think>", ["special"] = false } },
            }.ToJsonString());
        return dir;
    }

    [Test]
    public void Qwen35Regex_NoNormalizer_KeepsCombiningMarkWithLetter()
    {
        var tok = QwenTokenizer.FromFolder(Write(Qwen35Regex, nfc: false, withConfig: false));
        // No NFC: e + U+0301 stays decomposed, and the Qwen3.5 regex keeps the mark in e's word, so the merges apply.
        Assert.That(tok.Encode("e\u0301"), Is.EqualTo(new[] { 257 }));
        Assert.That(tok.Decode([257]), Is.EqualTo("e\u0301"));
    }

    [Test]
    public void Qwen3Regex_SplitsTheMarkIntoItsOwnWord()
    {
        var tok = QwenTokenizer.FromFolder(Write(Qwen3Regex, nfc: false, withConfig: false));
        // \p{L}+ stops at the mark: 'e' and U+0301 are separate words, so no merge crosses them.
        Assert.That(tok.Encode("e\u0301"), Is.EqualTo(new[] { 0x65, 0xCC, 0x81 }));
    }

    [Test]
    public void NfcNormalizer_ComposesBeforeBpe_OffsetsPointAtTheOriginal()
    {
        var tok = QwenTokenizer.FromFolder(Write(Qwen35Regex, nfc: true, withConfig: false));
        // NFC turns e+U+0301 into U+00E9 (bytes C3 A9), two byte tokens; both map back to the 2-char original.
        var (ids, offsets) = tok.EncodeWithOffsets("xe\u0301");
        Assert.That(ids, Is.EqualTo(new[] { 0x78, 0xC3, 0xA9 }));
        Assert.That(offsets, Is.EqualTo(new[] { (0, 1), (1, 3), (1, 3) }));
    }

    [Test]
    public void TokenizerConfig_AddedTokensDecoder_IsMerged()
    {
        var without = QwenTokenizer.FromFolder(Write(Qwen35Regex, nfc: false, withConfig: false));
        var with = QwenTokenizer.FromFolder(Write(Qwen35Regex, nfc: false, withConfig: true));
        Assert.That(without.TokenToId("<think>"), Is.Null);
        Assert.That(with.Encode("a<think>b"), Is.EqualTo(new[] { 0x61, 302, 0x62 }));
        Assert.That(with.EndOfTurnId, Is.EqualTo(301));
        Assert.That(with.PadId, Is.EqualTo(300));
    }

    [Test]
    public void UnsupportedNormalizer_IsRefusedNamingTheFile()
    {
        var dir = Write(Qwen35Regex, nfc: false, withConfig: false);
        var path = Path.Combine(dir, "tokenizer.json");
        var root = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        root["normalizer"] = new JsonObject { ["type"] = "Lowercase" };
        File.WriteAllText(path, root.ToJsonString());
        var e = Assert.Throws<UserInputException>(() => QwenTokenizer.FromFolder(dir));
        Assert.That(e!.Message, Does.Contain(path).And.Contain("Lowercase"));
    }
}
