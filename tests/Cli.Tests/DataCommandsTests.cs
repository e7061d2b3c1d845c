using System.Text.Json.Nodes;
using Qwen35.Tests;

namespace Qwen35.Cli.Tests;

/// <summary>The data verbs run as the real `trainer` program (its dll is copied next to the tests).</summary>
public class DataCommandsTests
{
    static (int Exit, string Out, string Err) Trainer(params string[] args) => CliRunner.RunProcess(args);

    [Test]
    public void Inspect_Json_ReportsRowsCategoriesAndBadRows()
    {
        var dir = TestPaths.TempDir();
        var path = Path.Combine(dir, "d.jsonl");
        File.WriteAllLines(path,
        [
            """{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"a"}],"category":"safety_refusal"}""",
            """{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"a"}]}""",
            """{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":5}],"category":"mid_refusal"}""",
            """{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"b"}],"category":"safety_refusal"}""",
            "{oops",
        ]);
        var (exit, stdout, stderr) = Trainer("data", "inspect", "--data", path, "--json", "--tokenizer", "builtin");
        Assert.That(exit, Is.EqualTo(2), "bad rows => exit 2 (bad input); stderr: " + stderr);
        var json = JsonNode.Parse(stdout)!.AsObject();
        Assert.That((int)json["rows"]!, Is.EqualTo(5));
        Assert.That(json["categories"]!.ToJsonString(), Is.EqualTo("""{"(none)":1,"safety_refusal":2}"""));
        var errors = json["errors"]!.AsArray();
        // JSONL errors name the 1-based line an editor shows (the fixture's 3rd and 5th lines).
        Assert.That(errors.Select(e => ((long?)e!["line"], (string)e["field"]!, (string)e["file"]!)),
            Is.EqualTo(new[] { ((long?)3, "messages[1].content", path), (5, "(line)", path) }));
        Assert.That((string)errors[0]!["reason"]!, Does.Contain("expected a string or a list of text parts"));
        Assert.That((string)errors[1]!["reason"]!, Is.EqualTo("invalid JSON: unexpected character 'o' at column 2 (expected a property name in double quotes)"));
        Assert.That((int)json["tokens"]!["count"]! > 0, Is.True);
    }

    [Test]
    public void Convert_ThenInspect_Parquet_HasRowGroups()
    {
        var dir = TestPaths.TempDir();
        var jsonl = Path.Combine(dir, "d.jsonl");
        File.WriteAllLines(jsonl, Enumerable.Range(0, 5).Select(i =>
            $$"""{"messages":[{"role":"user","content":"q{{i}}"},{"role":"assistant","content":"a{{i}}"}],"category":"c{{i % 2}}"}"""));
        var parquet = Path.Combine(dir, "d.parquet");
        var (exit, _, err) = Trainer("data", "convert", "--data", jsonl, "--out", parquet, "--row-group-size", "2");
        Assert.That(exit, Is.EqualTo(0), err);
        var (exit2, stdout, _) = Trainer("data", "inspect", "--data", parquet, "--json");
        Assert.That(exit2, Is.EqualTo(0));
        var json = JsonNode.Parse(stdout)!;
        Assert.That((int)json["files"]![0]!["row_groups"]!, Is.EqualTo(3));
        Assert.That(json["categories"]!.ToJsonString(), Is.EqualTo("""{"c0":3,"c1":2}"""));
    }

    [Test]
    public void Tokenize_TextAndMessages_GivesIdsTextAndMask()
    {
        var dir = TestPaths.TempDir();
        var input = Path.Combine(dir, "in.jsonl");
        File.WriteAllLines(input,
        [
            """{"text":"ab<|im_end|>"}""",
            """{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"a"}]}""",
            """{"messages":[{"role":"user","content":"q"}],"add_generation_prompt":true,"enable_thinking":false}""",
        ]);
        var (exit, stdout, err) = Trainer("tokenize", "--tokenizer", "builtin", "--input", input);
        Assert.That(exit, Is.EqualTo(0), err);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        Assert.That(lines[0]["ids"]!.AsArray().Select(x => (int)x!), Is.EqualTo(new[] { 97, 98, 258 }));
        Assert.That((string)lines[1]["text"]!, Is.EqualTo("<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\na<|im_end|>\n"));
        var ids = lines[1]["ids"]!.AsArray().Select(x => (int)x!).ToArray();
        var mask = lines[1]["labels_mask"]!.AsArray().Select(x => (int)x!).ToArray();
        Assert.That(ids.Where((_, i) => mask[i] == 1), Is.EqualTo(new[] { 97, 258 }), "trained: 'a' and <|im_end|>");
        Assert.That((string)lines[2]["text"]!, Does.EndWith("<|im_start|>assistant\n<think>\n\n</think>\n\n"));
        Assert.That(lines[2]["labels_mask"]!.AsArray().Select(x => (int)x!), Is.All.EqualTo(0));
    }

    [Test]
    public void Tokenize_Bench_PrintsTokensPerSecond()
    {
        var (exit, stdout, err) = Trainer("data", "bench-tokenizer", "--tokenizer", "builtin", "--seconds", "0.2");
        Assert.That(exit, Is.EqualTo(0), err);
        Assert.That(stdout, Does.Match(@"^[\d,]+ tokens/s"));
    }

    [Test]
    public void Preview_Recipe_UsesItsDataTokenizerAndMaskKeys()
    {
        var dir = TestPaths.TempDir();
        File.WriteAllLines(Path.Combine(dir, "d.jsonl"),
        [
            """{"messages":[{"role":"user","content":"q1"},{"role":"assistant","content":"first"},{"role":"user","content":"q2"},{"role":"assistant","content":"second"}]}""",
        ]);
        var recipe = Path.Combine(dir, "r.yaml");
        File.WriteAllText(recipe, "tokenizer: builtin\ndata:\n  train: d.jsonl\n  assistant_turns: last\n  train_think_block: true\n");
        var (exit, stdout, err) = Trainer("data", "preview", "--recipe", recipe, "--n", "1");
        Assert.That(exit, Is.EqualTo(0), err);
        // Only the last answer is trained (assistant_turns: last), with its think block (train_think_block: true).
        Assert.That(stdout, Does.Contain("first<|im_end|>").And.Contain("[[<think>\n\n</think>\n\nsecond<|im_end|>]]"));
        Assert.That(stdout, Does.Not.Contain("[[first"));
    }

    [Test]
    public void Preview_BadRecipe_IsBadInput()
    {
        var dir = TestPaths.TempDir();
        var recipe = Path.Combine(dir, "r.yaml");
        File.WriteAllText(recipe, "data:\n  seam_rule: sideways\n");
        var (exit, _, err) = Trainer("data", "preview", "--recipe", recipe);
        Assert.That(exit, Is.EqualTo(2));
        Assert.That(err, Does.Contain("seam_rule"));
    }

    [Test]
    public void Inspect_EmptyFile_IsBadInput_NamingTheFile()
    {
        var path = Path.Combine(TestPaths.TempDir(), "empty.jsonl");
        File.WriteAllText(path, "");
        var (exit, _, err) = Trainer("data", "inspect", "--data", path);
        Assert.That(exit, Is.EqualTo(2), err);
        Assert.That(err.Trim(), Is.EqualTo($"data: error: {path}: (file): no rows (the file is empty)"));
    }

    [Test]
    public void Inspect_RowsWithoutTrainedTurn_AreReported_AndNoUsableRowIsBadInput()
    {
        var dir = TestPaths.TempDir();
        var some = Path.Combine(dir, "some.jsonl");
        File.WriteAllLines(some,
        [
            """{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"a"}]}""",
            """{"messages":[{"role":"user","content":"only a question"}]}""",
        ]);
        var (exit, stdout, err) = Trainer("data", "inspect", "--data", some);
        Assert.That(exit, Is.EqualTo(0), "one usable row, no bad row: " + err);
        Assert.That(stdout, Does.Contain("usable 1").And.Contain($"{some} line 2: no trained assistant turn"));

        var none = Path.Combine(dir, "none.jsonl");
        File.WriteAllLines(none, ["""{"messages":[{"role":"user","content":"only a question"}]}"""]);
        (exit, stdout, err) = Trainer("data", "inspect", "--data", none, "--json");
        Assert.That(exit, Is.EqualTo(2), "no usable row");
        Assert.That((int)JsonNode.Parse(stdout)!["usable"]!, Is.EqualTo(0));
        Assert.That(err.Trim(), Is.EqualTo($"data: error: {none}: no usable row (rows 1, bad 0, dropped by training 1)"));
    }

    [Test]
    public void Preview_NBelowOne_IsBadInput_NamingTheOption()
    {
        var dir = TestPaths.TempDir();
        var path = Path.Combine(dir, "d.jsonl");
        File.WriteAllLines(path, ["""{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"a"}]}"""]);
        foreach (var n in new[] { "-1", "0" })
        {
            var (exit, stdout, err) = Trainer("data", "preview", "--data", path, "--tokenizer", "builtin", "--n", n);
            Assert.That(exit, Is.EqualTo(2), n);
            Assert.That(err.Trim(), Is.EqualTo($"data: error: --n must be at least 1 (got {n})"));
            Assert.That(stdout, Is.Empty);
        }
        var (ok, shown, _) = Trainer("data", "preview", "--data", path, "--tokenizer", "builtin", "--n", "1");
        Assert.That(ok, Is.EqualTo(0));
        Assert.That(shown, Does.StartWith("=== d.jsonl line 1 "));
    }
}
