using System.CommandLine;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Qwen35.Cli.Commands;
using Qwen35.Lora;
using Qwen35.Models;
using Qwen35.Tests;
using static TorchSharp.torch;

namespace Qwen35.Cli.Tests;

/// <summary>
/// The generate verb, parsed and run in-process on the golden tiny model (whose expected.json holds Hugging Face's
/// greedy continuation of sequence 0), plus a copy of it with a synthetic byte-level tokenizer for text prompts.
/// </summary>
public class GenerateCommandTests
{
    static readonly string AdapterDir = Path.Combine(TestPaths.GoldenTiny, "adapter");

    static (int Code, string Out, string Err) Invoke(params string[] args) =>
        CliRunner.Run([GenerateCommand.Build()], ["generate", .. args]);

    /// <summary>Runs with --json and returns the parsed result; fails the test on a non-zero exit.</summary>
    static (int[] Tokens, string? Text, string Finish) Generate(params string[] args)
    {
        var (code, stdout, stderr) = Invoke([.. args, "--json"]);
        Assert.That(code, Is.EqualTo(0), stderr);
        var root = JsonDocument.Parse(stdout).RootElement;
        return (root.GetProperty("new_tokens").EnumerateArray().Select(e => e.GetInt32()).ToArray(),
            root.TryGetProperty("text", out var t) ? t.GetString() : null,
            root.GetProperty("finish_reason").GetString()!);
    }

    static JsonElement Golden(string file) =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(TestPaths.GoldenTiny, file))).RootElement;

    static string Sequence0 => string.Join(",", Golden("inputs.json").GetProperty("sequences")[0].EnumerateArray().Select(e => e.GetInt32()));

    static int[] GoldenGreedy => Golden("expected.json").GetProperty("greedy").GetProperty("new_tokens").EnumerateArray().Select(e => e.GetInt32()).ToArray();

    static string[] Golden12(params string[] extra) => ["--model", TestPaths.GoldenTiny, "--prompt-ids", Sequence0, "--max-new-tokens", "12", .. extra];

    [Test]
    public void GreedyReproducesGoldenTokens()
    {
        var (code, stdout, stderr) = Invoke([.. Golden12(), "--json"]);
        Assert.That(code, Is.EqualTo(0), stderr);
        var root = JsonDocument.Parse(stdout).RootElement;
        Assert.That(root.GetProperty("new_tokens").EnumerateArray().Select(e => e.GetInt32()), Is.EqualTo(GoldenGreedy));
        Assert.That(root.GetProperty("finish_reason").GetString(), Is.EqualTo("length"));
        Assert.That(root.TryGetProperty("text", out _), Is.False, "no tokenizer in the golden folder, so no text");
        Assert.That(stderr, Does.Contain("loaded 56 tensors").And.Contain("prefill 37 tokens").And.Contain("decode 11 steps").And.Contain("tok/s"));
    }

    [Test]
    public void PlainOutputWithoutTokenizerIsTheIdsInPromptIdsSyntax()
    {
        var (code, stdout, stderr) = Invoke(Golden12("--greedy"));
        Assert.That(code, Is.EqualTo(0), stderr);
        Assert.That(stdout.Trim(), Is.EqualTo(string.Join(",", GoldenGreedy)));
    }

    [Test]
    public void SeededSamplingRepeatsAndDependsOnTheSeed()
    {
        var first = Generate(Golden12("--seed", "1")).Tokens;
        var again = Generate(Golden12("--seed", "1", "--temperature", "1")).Tokens;
        var other = Generate(Golden12("--seed", "2")).Tokens;
        Assert.That(first, Has.Length.EqualTo(12));
        Assert.That(again, Is.EqualTo(first), "same seed, same tokens");
        // The tiny model's next-token distribution is nearly uniform over 512 ids (loss ≈ ln 512), so two seeds
        // agreeing on 12 draws, or a draw matching argmax 12 times, is practically impossible.
        Assert.That(other, Is.Not.EqualTo(first), "a different seed draws different tokens");
        Assert.That(first, Is.Not.EqualTo(GoldenGreedy), "sampling is not argmax");
    }

    [Test]
    public void TopKOneSamplingEqualsGreedy() =>
        Assert.That(Generate(Golden12("--top-k", "1", "--seed", "7")).Tokens, Is.EqualTo(GoldenGreedy));

    [Test]
    public void StopIdEndsGenerationAndIsReported()
    {
        // The golden greedy continuation starts 477, 472, ...: stopping on 472 keeps exactly the first two.
        var (tokens, _, finish) = Generate(Golden12("--stop-ids", GoldenGreedy[1].ToString()));
        Assert.That(tokens, Is.EqualTo(GoldenGreedy[..2]));
        Assert.That(finish, Is.EqualTo("stop"));
    }

    [Test]
    public void AdapterChangesTheOutputAndMatchesTheMergedModel()
    {
        var adapted = Generate(Golden12("--adapter", AdapterDir)).Tokens;
        Assert.That(adapted, Is.Not.EqualTo(GoldenGreedy), "the golden adapter changes the greedy continuation");

        // The same adapter folded into the weights must give the same greedy tokens.
        var mergedDir = Path.Combine(TestPaths.TempDir("qwen35-generate-merged"), "merged");
        var (model, _) = Qwen35ForCausalLM.FromPretrained(TestPaths.GoldenTiny, ScalarType.Float32, CPU);
        using (model)
        {
            LoraInjector.LoadAdapter(model, AdapterDir);
            MergedModelExport.Export(model, TestPaths.GoldenTiny, mergedDir);
        }
        var merged = Generate("--model", mergedDir, "--prompt-ids", Sequence0, "--max-new-tokens", "12").Tokens;
        Assert.That(merged, Is.EqualTo(adapted));
    }

    // ---- text prompts: the golden weights plus a synthetic byte-level tokenizer.json ----

    const int EndOfText = 256, ImStart = 257, ImEnd = 258, ThinkOpen = 259, ThinkClose = 260;

    /// <summary>Content of every added token: Qwen's specials first, then fillers up to the model's 512 ids.</summary>
    static string AddedContent(int id) => id switch
    {
        EndOfText => "<|endoftext|>",
        ImStart => "<|im_start|>",
        ImEnd => "<|im_end|>",
        ThinkOpen => "<think>",
        ThinkClose => "</think>",
        _ => $"<|extra_{id}|>",
    };

    /// <summary>
    /// A copy of the golden model with a tokenizer.json whose ids 0..255 are the bytes (GPT-2 byte-level alphabet,
    /// no merges) and 256..511 added tokens, so every id the model can produce decodes.
    /// </summary>
    static string GoldenWithTokenizer()
    {
        var dir = TestPaths.TempDir("qwen35-generate-tok");
        foreach (var f in new[] { "config.json", "model.safetensors" })
            File.Copy(Path.Combine(TestPaths.GoldenTiny, f), Path.Combine(dir, f));
        var vocab = new JsonObject();
        for (var b = 0; b < 256; b++) vocab[ByteChar(b).ToString()] = b;
        var added = new JsonArray();
        for (var id = 256; id < 512; id++) added.Add(new JsonObject { ["id"] = id, ["content"] = AddedContent(id), ["special"] = true });
        var root = new JsonObject
        {
            ["added_tokens"] = added,
            ["normalizer"] = null,
            ["pre_tokenizer"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["pretokenizers"] = new JsonArray(
                    new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = @"\p{L}+|\p{N}|\s+|[^\s\p{L}\p{N}]+" }, ["behavior"] = "Isolated", ["invert"] = false },
                    new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["use_regex"] = false }),
            },
            ["model"] = new JsonObject { ["type"] = "BPE", ["vocab"] = vocab, ["merges"] = new JsonArray() },
        };
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), root.ToJsonString());
        return dir;
    }

    /// <summary>GPT-2's byte-to-unicode map: printable Latin-1 bytes stand for themselves, the rest move to 256+.</summary>
    static char ByteChar(int b)
    {
        static bool Printable(int x) => x is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
        if (Printable(b)) return (char)b;
        return (char)(256 + Enumerable.Range(0, b).Count(x => !Printable(x)));
    }

    /// <summary>Ids of a prompt given as text pieces (UTF-8 bytes) and added-token ids, independent of the library.</summary>
    static string Ids(params object[] pieces) => string.Join(",", pieces.SelectMany(p => p is int id ? new[] { id } : Encoding.UTF8.GetBytes((string)p).Select(b => (int)b)));

    /// <summary>The text of ids under the synthetic tokenizer: byte runs as UTF-8, added tokens as their content.</summary>
    static string Decode(IEnumerable<int> ids)
    {
        var text = new StringBuilder();
        var bytes = new List<byte>();
        foreach (var id in ids)
        {
            if (id < 256) { bytes.Add((byte)id); continue; }
            text.Append(Encoding.UTF8.GetString(bytes.ToArray())).Append(AddedContent(id));
            bytes.Clear();
        }
        return text.Append(Encoding.UTF8.GetString(bytes.ToArray())).ToString();
    }

    [Test]
    public void TextPromptIsEncodedWithTheFolderTokenizerAndTheNewTextDecoded()
    {
        var dir = GoldenWithTokenizer();
        const string prompt = "Hello, 世界 <|im_end|>";
        var fromText = Generate("--model", dir, "--prompt", prompt, "--max-new-tokens", "8");
        var fromIds = Generate("--model", dir, "--prompt-ids", Ids("Hello, 世界 ", ImEnd), "--max-new-tokens", "8");
        Assert.That(fromText.Tokens, Is.EqualTo(fromIds.Tokens), "the text encodes to its UTF-8 bytes, the special token whole");

        // The text is the decoded new tokens without the stop token (<|endoftext|>, <|im_end|> or the config's eos).
        var stopped = fromText.Finish == "stop";
        if (stopped) Assert.That(new[] { EndOfText, ImEnd, 511 }, Does.Contain(fromText.Tokens[^1]));
        Assert.That(fromText.Text, Is.EqualTo(Decode(stopped ? fromText.Tokens[..^1] : fromText.Tokens)));

        var (code, stdout, stderr) = Invoke("--model", dir, "--prompt", prompt, "--max-new-tokens", "8");
        Assert.That(code, Is.EqualTo(0), stderr);
        Assert.That(stdout, Is.EqualTo(fromText.Text + Environment.NewLine), "plain output is the new text");
        Assert.That(stderr, Does.Contain($"stop ids [511,{ImEnd},{EndOfText}]"));
    }

    [TestCase(false)]
    [TestCase(true)]
    public void ChatRendersTheQwenTemplateWithTheGenerationPrompt(bool thinking)
    {
        var dir = GoldenWithTokenizer();
        var chat = Generate("--model", dir, "--chat", "--system", "Be brief.", "--prompt", "hi", "--enable-thinking", thinking ? "true" : "false", "--max-new-tokens", "6");
        // The Qwen3.5 template: system turn, user turn, then the assistant header; thinking off closes an empty block.
        object[] header = [ImStart, "system\nBe brief.", ImEnd, "\n", ImStart, "user\nhi", ImEnd, "\n", ImStart, "assistant\n", ThinkOpen, "\n"];
        var ids = thinking ? Ids(header) : Ids([.. header, "\n", ThinkClose, "\n\n"]);
        var plain = Generate("--model", dir, "--prompt-ids", ids, "--max-new-tokens", "6");
        Assert.That(chat.Tokens, Is.EqualTo(plain.Tokens));
    }

    [Test]
    public void ChatThinkingIsOffByDefault()
    {
        var dir = GoldenWithTokenizer();
        var chat = Generate("--model", dir, "--chat", "--prompt", "hi", "--max-new-tokens", "6");
        var ids = Ids(ImStart, "user\nhi", ImEnd, "\n", ImStart, "assistant\n", ThinkOpen, "\n\n", ThinkClose, "\n\n");
        Assert.That(chat.Tokens, Is.EqualTo(Generate("--model", dir, "--prompt-ids", ids, "--max-new-tokens", "6").Tokens));
    }

    [Test]
    public void TextPromptWithoutTokenizerIsBadInputSuggestingPromptIds()
    {
        var (code, stdout, stderr) = Invoke("--model", TestPaths.GoldenTiny, "--prompt", "hello");
        Assert.That(code, Is.EqualTo(2));
        Assert.That(stderr, Does.Contain("no tokenizer.json").And.Contain("--prompt-ids").And.Contain(TestPaths.GoldenTiny));
        Assert.That(stdout, Is.Empty);
    }

    [Test]
    public void PromptIdOutsideTheVocabularyIsBadInput()
    {
        var (code, _, stderr) = Invoke("--model", TestPaths.GoldenTiny, "--prompt-ids", "1,2,512");
        Assert.That(code, Is.EqualTo(2));
        Assert.That(stderr, Does.Contain("id 512 at index 2").And.Contain("[0, 512)"));
    }

    [TestCase("--greedy --seed 3", "--greedy cannot be combined")]
    [TestCase("--greedy --temperature 0.7", "--greedy cannot be combined")]
    [TestCase("--prompt hi", "exactly one of --prompt")]
    [TestCase("--chat", "use it with --prompt, not --prompt-ids")]
    [TestCase("--system hi", "only apply with --chat")]
    [TestCase("--top-p 1.5", "--top-p must be in (0, 1]")]
    [TestCase("--temperature 0", "--temperature must be > 0")]
    [TestCase("--max-new-tokens 0", "--max-new-tokens must be at least 1")]
    [TestCase("--stop-ids 4,x", "--stop-ids: item 1 'x'")]
    public void UsageErrorsExitOne(string extra, string message)
    {
        var (code, stdout, stderr) = Invoke(["--model", TestPaths.GoldenTiny, "--prompt-ids", "1,2,3", .. extra.Split(' ')]);
        Assert.That(code, Is.EqualTo(1), stderr);
        Assert.That(stderr, Does.Contain(message));
        Assert.That(stdout, Is.Empty);
    }

    [TestCase("--no-such-option")]
    [TestCase("--max-new-tokens many")]
    public void ParseErrorsExitOne(string extra)
    {
        // System.CommandLine reports these itself (and prints the help to stdout).
        var (code, _, stderr) = Invoke(["--model", TestPaths.GoldenTiny, "--prompt-ids", "1,2,3", .. extra.Split(' ')]);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(stderr, Does.Contain(extra.Split(' ')[^1]));
    }

    [Test]
    public void NoPromptAtAllIsAUsageError()
    {
        var (code, _, stderr) = Invoke("--model", TestPaths.GoldenTiny);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(stderr, Does.Contain("exactly one of --prompt"));
    }

    [Test]
    public void TrainerProgramRunsGenerate()
    {
        // The real program (registration in CommandRegistry), as a user runs it.
        var psi = new System.Diagnostics.ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in (string[])[Path.Combine(AppContext.BaseDirectory, "trainer.dll"), "generate", .. Golden12("--json")])
            psi.ArgumentList.Add(a);
        using var p = System.Diagnostics.Process.Start(psi)!;
        var stderrTask = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEnd();
        Assert.That(p.WaitForExit(120_000), Is.True, "trainer generate did not finish");
        Assert.That(p.ExitCode, Is.EqualTo(0), stderrTask.Result);
        Assert.That(JsonDocument.Parse(stdout).RootElement.GetProperty("new_tokens").EnumerateArray().Select(e => e.GetInt32()), Is.EqualTo(GoldenGreedy));
    }
}
