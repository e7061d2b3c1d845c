using Qwen35.Export.LlamaCpp;
using System.Text;
using System.Text.Json;
using LLama;
using Qwen35.Data;
using Qwen35.Export.Gguf;
using Qwen35.Lora;
using Qwen35.Models;
using Qwen35.Models.Config;
using Qwen35.Tests;
using static TorchSharp.torch;

namespace Qwen35.Export.Tests;

/// <summary>
/// The tokenizer metadata of a GGUF written with the Qwen3 fixture tokenizer (151,669 tokens) for a tiny random model
/// whose vocab_size (151,680) exceeds it, so the [PAD] fill is exercised: the keys read back with their types, and the
/// real llama.cpp tokenizes the fixture strings exactly as this project's QwenTokenizer does.
/// </summary>
[NonParallelizable]
public class GgufTokenizerTests
{
    const int VocabSize = 151_680;
    static readonly Lazy<string> File = new(Write);

    static string TokenizerDir => TestPaths.RequireShared("fixtures", "tokenizer", "qwen3");

    static string Write()
    {
        var dir = TokenizerDir;
        var config = Qwen35TextConfig.Tiny() with { VocabSize = VocabSize, HiddenSize = 32, IntermediateSize = 64 };
        var root = TestPaths.TempDir("qwen35-gguf-tok");
        var modelDir = Path.Combine(root, "model");
        using (var model = Qwen35ForCausalLM.CreateRandom(config, 1, ScalarType.Float32, CPU))
            MergedModelExport.ExportWithoutSource(model, config.ToJson(), modelDir);
        // The model folder has no tokenizer.json: `--tokenizer` names the fixture's, as a user would.
        var path = Path.Combine(root, "tok.gguf");
        var (code, stdout, err) = GgufFiles.Run("gguf", "--model", modelDir, "--tokenizer", dir, "--out", path);
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(stdout, Does.Contain($", tokenizer from {dir}"));
        return path;
    }

    [Test]
    public void Tokenizer_keys_read_back_with_the_files_data_and_types()
    {
        var g = GgufReader.Open(File.Value);
        var tk = QwenTokenizer.FromFolder(TokenizerDir);
        using var json = JsonDocument.Parse(System.IO.File.ReadAllBytes(Path.Combine(TokenizerDir, "tokenizer.json")));
        using var cfg = JsonDocument.Parse(System.IO.File.ReadAllBytes(Path.Combine(TokenizerDir, "tokenizer_config.json")));

        Assert.That(g.Metadata["tokenizer.ggml.model"], Is.EqualTo((8u, (object)"gpt2")));
        Assert.That(g.Metadata["tokenizer.ggml.pre"], Is.EqualTo((8u, (object)"qwen2")), "the Qwen3 fixture's Split regex is llama.cpp's qwen2");
        var (tt, tv) = ((uint, (uint ElementType, object[] Values)))g.Metadata["tokenizer.ggml.tokens"];
        Assert.That((tt, tv.ElementType, tv.Values.Length), Is.EqualTo((9u, 8u, VocabSize)));
        var (yt, yv) = ((uint, (uint ElementType, object[] Values)))g.Metadata["tokenizer.ggml.token_type"];
        Assert.That((yt, yv.ElementType, yv.Values.Length), Is.EqualTo((9u, 5u, VocabSize)));
        // Every vocabulary entry at its id, normal type.
        var vocab = json.RootElement.GetProperty("model").GetProperty("vocab");
        foreach (var p in vocab.EnumerateObject())
            if (!Equals(tv.Values[p.Value.GetInt32()], p.Name) || (int)yv.Values[p.Value.GetInt32()] != 1)
                Assert.Fail($"id {p.Value.GetInt32()}: '{tv.Values[p.Value.GetInt32()]}' type {yv.Values[p.Value.GetInt32()]}, expected '{p.Name}' type 1");
        // Added tokens: special → control (3), else user-defined (4).
        foreach (var t in json.RootElement.GetProperty("added_tokens").EnumerateArray())
        {
            var id = t.GetProperty("id").GetInt32();
            Assert.That((tv.Values[id], yv.Values[id]), Is.EqualTo(((object)t.GetProperty("content").GetString()!, (object)(t.GetProperty("special").GetBoolean() ? 3 : 4))));
        }
        Assert.That(tk.VocabSize, Is.EqualTo(151_669));
        for (var id = tk.VocabSize; id < VocabSize; id++)
            Assert.That((tv.Values[id], yv.Values[id]), Is.EqualTo(((object)$"[PAD{id}]", (object)5)));

        var (mt, mv) = ((uint, (uint ElementType, object[] Values)))g.Metadata["tokenizer.ggml.merges"];
        var merges = json.RootElement.GetProperty("model").GetProperty("merges").EnumerateArray()
            .Select(m => m.ValueKind == JsonValueKind.Array ? m[0].GetString() + " " + m[1].GetString() : m.GetString()).ToArray();
        Assert.That((mt, mv.ElementType), Is.EqualTo((9u, 8u)));
        Assert.That(mv.Values, Is.EqualTo(merges), "merges in file order");

        Assert.That(g.Metadata["tokenizer.ggml.eos_token_id"], Is.EqualTo((4u, (object)(uint)tk.EndOfTurnId)));
        Assert.That(g.Metadata["tokenizer.ggml.padding_token_id"], Is.EqualTo((4u, (object)(uint)tk.PadId)));
        Assert.That(g.Metadata.ContainsKey("tokenizer.ggml.bos_token_id"), Is.False, "bos_token is null in the fixture");
        Assert.That(g.Metadata["tokenizer.ggml.add_bos_token"], Is.EqualTo((7u, (object)false)));
        Assert.That(g.Metadata["tokenizer.chat_template"], Is.EqualTo((8u, (object)cfg.RootElement.GetProperty("chat_template").GetString()!)));
        Assert.That(g.Metadata["qwen35.vocab_size"].Value, Is.EqualTo((uint)VocabSize));
    }

    /// <summary>Strings the fixture marks as not NFC: Hugging Face's (and QwenTokenizer's) NFC normaliser composes them
    /// before BPE, llama.cpp's gpt2 tokenizer has no normaliser and tokenizes the decomposed code points.</summary>
    static readonly string[] NotNfc = ["p-s11", "p-s12", "p-s13"];

    [Test]
    public void Llama_cpp_tokenizes_the_fixture_strings_as_QwenTokenizer_does()
    {
        var tk = QwenTokenizer.FromFolder(TokenizerDir);
        using var cases = JsonDocument.Parse(System.IO.File.ReadAllBytes(TestPaths.RequireShared("fixtures", "tokenizer", "cases.json")));
        using var weights = LlamaCppRunner.Load(File.Value, out _);
        var differ = new List<string>();
        var compared = 0;
        foreach (var c in cases.RootElement.GetProperty("cases").EnumerateArray())
        {
            var id = c.GetProperty("id").GetString()!;
            var text = c.GetProperty("text").GetString()!;
            var expected = tk.Encode(text);
            var got = weights.Tokenize(text, false, true, Encoding.UTF8).Select(t => (int)t).ToArray();
            if (!got.SequenceEqual(expected)) differ.Add(id);
            compared++;
        }
        // Special tokens in text: the added-token split happens before BPE in both.
        var chat = "<|im_start|>user\nこんにちは<|im_end|>\n<|im_start|>assistant\n";
        Assert.That(weights.Tokenize(chat, false, true, Encoding.UTF8).Select(t => (int)t).ToArray(), Is.EqualTo(tk.Encode(chat)));
        Assert.That(compared, Is.EqualTo(45));
        Assert.That(differ, Is.EquivalentTo(NotNfc), "only the non-NFC strings may differ");
    }

    /// <summary>The fixture's folder with its Split regex replaced by <paramref name="regex"/> and, optionally, the shared
    /// Qwen3.5 chat_template.jinja beside it; the metadata alone written to a GGUF (no tensors) and read back.</summary>
    static GgufReader MetadataOf(string regex, bool jinja, out string dir)
    {
        dir = TestPaths.TempDir("qwen35-gguf-tok-variant");
        var json = System.Text.Json.Nodes.JsonNode.Parse(System.IO.File.ReadAllText(Path.Combine(TokenizerDir, "tokenizer.json")))!;
        var pattern = json["pre_tokenizer"]!["pretokenizers"]![0]!["pattern"]!;
        Assert.That(pattern["Regex"]!.GetValue<string>(), Does.StartWith("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+"), "the fixture holds Qwen3's regex");
        pattern["Regex"] = regex;
        System.IO.File.WriteAllText(Path.Combine(dir, "tokenizer.json"), json.ToJsonString());
        System.IO.File.Copy(Path.Combine(TokenizerDir, "tokenizer_config.json"), Path.Combine(dir, "tokenizer_config.json"));
        if (jinja) System.IO.File.Copy(TestPaths.RequireShared("fixtures", "tokenizer", "qwen3.5_chat_template.jinja"), Path.Combine(dir, "chat_template.jinja"));
        var m = GgufModelExport.Metadata(Qwen35TextConfig.Tiny() with { VocabSize = VocabSize }, GgufType.F32, "m", dir);
        var path = Path.Combine(dir, "meta.gguf");
        using (var f = System.IO.File.Create(path)) GgufFileWriter.Write(f, m, [], (_, _) => { });
        return GgufReader.Open(path);
    }

    [Test]
    public void Qwen35_regex_gives_pre_qwen35_and_chat_template_jinja_wins_over_the_config()
    {
        const string qwen35Regex = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
        var g = MetadataOf(qwen35Regex, jinja: true, out var dir);
        Assert.That(g.Metadata["tokenizer.ggml.pre"].Value, Is.EqualTo("qwen35"));
        // llama.cpp loads pre qwen35 (vocabulary only: the file has no tensors) and tokenizes as QwenTokenizer does with that
        // regex. Not a proof that qwen35 rather than qwen2 splitting ran: on these strings (and on Devanagari and
        // x+U+0301 tried with the Qwen3 vocabulary) both regexes give the same ids.
        var tk = QwenTokenizer.FromFolder(dir);
        using var weights = LLamaWeights.LoadFromFile(new LLama.Common.ModelParams(g.Path) { VocabOnly = true, GpuLayerCount = 0 });
        using var cases = JsonDocument.Parse(System.IO.File.ReadAllBytes(TestPaths.RequireShared("fixtures", "tokenizer", "cases.json")));
        var differ = cases.RootElement.GetProperty("cases").EnumerateArray()
            .Where(c => !weights.Tokenize(c.GetProperty("text").GetString()!, false, true, Encoding.UTF8).Select(t => (int)t)
                .SequenceEqual(tk.Encode(c.GetProperty("text").GetString()!)))
            .Select(c => c.GetProperty("id").GetString()).ToList();
        Assert.That(differ, Is.EquivalentTo(NotNfc), "only the non-NFC strings may differ");
        Assert.That(g.Metadata["tokenizer.chat_template"].Value,
            Is.EqualTo(System.IO.File.ReadAllText(TestPaths.RequireShared("fixtures", "tokenizer", "qwen3.5_chat_template.jinja"))));
    }

    [Test]
    public void A_regex_llama_cpp_does_not_know_is_refused_naming_the_file()
    {
        string? dir = null;
        var e = Assert.Throws<UserInputException>(() => MetadataOf(@"\w+|\s+", jinja: false, out dir));
        Assert.That(e!.Message, Does.StartWith(Path.Combine(dir!, "tokenizer.json") + @": pre_tokenizer Split regex '\w+|\s+' is neither Qwen3's nor Qwen3.5's"));
    }
}
