using System.Text.Json.Nodes;
using Qwen35.Tests;

namespace Qwen35.Cli.Tests.Preference;

/// <summary>`trainer data inspect --format preference` run as the real program.</summary>
public class PreferenceInspectCliTests
{
    static (int Exit, string Out, string Err) Trainer(params string[] args) => CliRunner.RunProcess(args);

    [Test]
    public void Sample_IsValid_FourCategories_Exit0()
    {
        var sample = Path.Combine(TestPaths.RepoRoot, "data", "sample", "ja_preference_sample.jsonl");
        var (exit, stdout, stderr) = Trainer("data", "inspect", "--format", "preference", "--data", sample, "--tokenizer", "builtin", "--max-length", "1024", "--json");
        Assert.That(exit, Is.EqualTo(0), stderr);
        var json = JsonNode.Parse(stdout)!.AsObject();
        Assert.That((int)json["valid"]!, Is.EqualTo(64));
        Assert.That((int)json["usable"]!, Is.EqualTo(64));
        Assert.That(json["categories"]!.ToJsonString(),
            Is.EqualTo("""{"anti_hallucination":16,"mid_refusal":16,"overrefusal_prevention":16,"safety_refusal":16}"""));
        Assert.That(json["formats"]!.ToJsonString(), Is.EqualTo("""{"conversational":56,"standard":8}"""));
        Assert.That((int)json["tokens"]!["dropped"]!, Is.Zero);
    }

    [Test]
    public void BadRowsAndTooLongPairs_AreListedByLine_Exit2()
    {
        var path = Path.Combine(TestPaths.TempDir(), "prefs.jsonl");
        File.WriteAllLines(path,
        [
            """{"prompt":"q","chosen":"a","rejected":"b","category":"safety_refusal"}""",
            """{"prompt":"q","chosen":"a","rejected":"a"}""",
            """{"prompt":"q","chosen":"a much longer answer than fits","rejected":"b"}""",
        ]);
        var (exit, stdout, _) = Trainer("data", "inspect", "--format", "preference", "--data", path, "--tokenizer", "builtin", "--max-length", "20");
        Assert.That(exit, Is.EqualTo(2), "a bad row is bad input");
        Assert.That(stdout, Does.Contain("rows 3, valid pairs 2, usable 1, bad 1, dropped by max_length 1"));
        Assert.That(stdout, Does.Contain($"  {path} line 2: rejected: identical to chosen (the two answers render to the same text)\n"));
        Assert.That(stdout, Does.Contain($"  {path} line 3: chosen: completion is 31 tokens; max_length 20 leaves room for at most 19 (one prompt token is always kept)\n"));
    }

    [Test]
    public void UnknownFormat_IsAUsageError()
    {
        var (exit, _, stderr) = Trainer("data", "inspect", "--format", "dpo", "--data", "x.jsonl");
        Assert.That(exit, Is.EqualTo(1), "usage");
        Assert.That(stderr, Does.Contain("Argument 'dpo' not recognized. Must be one of:"));
    }
}
