using Qwen35.Data.Preference;
using Qwen35.Tests;

namespace Qwen35.Data.Tests.Preference;

/// <summary>Reading TRL's preference layouts: both formats, each bad-row reason's exact line, the skip policy.</summary>
public class PreferenceReaderTests
{
    static string Write(params string[] lines)
    {
        var path = Path.Combine(TestPaths.TempDir(), "prefs.jsonl");
        File.WriteAllLines(path, lines);
        return path;
    }

    [Test]
    public void Conversational_And_Standard_Rows_Parse_WithIdCategoryAndLine()
    {
        var path = Write(
            """{"id":"c1","category":"safety_refusal","prompt":[{"role":"system","content":"sys"},{"role":"user","content":"q"}],"chosen":[{"role":"assistant","content":"good"}],"rejected":[{"role":"assistant","content":"bad"}]}""",
            "",
            """{"id":7,"prompt":"question","chosen":"yes","rejected":"no","extra":1}""");
        var read = PreferenceReader.Read(path);

        Assert.That(read, Has.Count.EqualTo(2));
        var c = read[0];
        Assert.That((c.Id, c.Category, c.Source, c.Line, c.Unit), Is.EqualTo(("c1", "safety_refusal", path, 1, LocationUnit.Line)));
        Assert.That(c.Prompt.Select(m => (m.Role, m.Content, m.Train)), Is.EqualTo(new[] { ("system", "sys", (bool?)false), ("user", "q", false) }),
            "prompt messages are context");
        Assert.That(c.Chosen.Select(m => (m.Role, m.Content)), Is.EqualTo(new[] { ("assistant", "good") }));
        Assert.That(c.Rejected.Select(m => (m.Role, m.Content)), Is.EqualTo(new[] { ("assistant", "bad") }));

        var s = read[1];
        Assert.That((s.Id, s.Category, s.Line), Is.EqualTo(("7", (string?)null, 3)), "a numeric id becomes its text; blank lines count");
        Assert.That(s.Prompt.Select(m => (m.Role, m.Content)), Is.EqualTo(new[] { ("user", "question") }), "a standard prompt is one user message");
        Assert.That(s.Chosen.Single(), Is.EqualTo(new ChatMessage("assistant", "yes")));
        Assert.That(s.Rejected.Single(), Is.EqualTo(new ChatMessage("assistant", "no")));
        Assert.That(read.Formats, Is.EqualTo(new SortedDictionary<PreferenceFormat, int> { [PreferenceFormat.Conversational] = 1, [PreferenceFormat.Standard] = 1 }));
        Assert.That(c.Location.ToString(), Is.EqualTo($"{path} line 1"));
    }

    // Each bad row gives exactly one line: "FILE line N: FIELD: reason".
    [TestCase("""{"prompt":"q","chosen":"a"}""", "rejected: missing")]
    [TestCase("""{"chosen":"a","rejected":"b"}""", "prompt: missing")]
    [TestCase("""{"prompt":"q","chosen":null,"rejected":"b"}""", "chosen: is null")]
    [TestCase("""{"prompt":"  ","chosen":"a","rejected":"b"}""", "prompt: empty")]
    [TestCase("""{"prompt":"q","chosen":"","rejected":"b"}""", "chosen: assistant turn is empty (no content and no tool calls)")]
    [TestCase("""{"prompt":"q","chosen":"a","rejected":[]}""", "rejected: empty list of messages")]
    [TestCase("""{"prompt":"q","chosen":[{"role":"assistant","content":" "}],"rejected":"b"}""", "chosen[0].content: assistant turn is empty (no content and no tool calls)")]
    [TestCase("""{"prompt":"q","chosen":"same","rejected":" same\n"}""", "rejected: identical to chosen (the two answers render to the same text)")]
    [TestCase("""{"prompt":"q","chosen":[{"role":"user","content":"a"}],"rejected":"b"}""", "chosen[0].role: expected assistant, got user")]
    [TestCase("""{"prompt":"q","chosen":"a","rejected":[{"role":"assistant","content":"b"},{"role":"assistant","content":"c"}]}""", "rejected: expected exactly one assistant message, got 2 messages")]
    [TestCase("""{"prompt":[{"role":"user","content":"q"},{"role":"assistant","content":"x"}],"chosen":"a","rejected":"b"}""", "prompt[1].role: the prompt must end with a user or tool message, got assistant")]
    [TestCase("""{"prompt":[{"role":"user","content":"q"},{"role":"system","content":"s"},{"role":"user","content":"q"}],"chosen":"a","rejected":"b"}""", "prompt: System message must be at the beginning. (message 1)")]
    [TestCase("""{"prompt":5,"chosen":"a","rejected":"b"}""", "prompt: expected a string or a list of messages, got a number")]
    [TestCase("""{"prompt":"q","chosen":"a","rejected":"b","category":3}""", "category: expected a string, got a number")]
    [TestCase("{oops", "(line): invalid JSON: unexpected character 'o' at column 2 (expected a property name in double quotes)")]
    public void BadRow_FailsWithItsOneLineMessage(string line, string expected)
    {
        var path = Write("""{"prompt":"q","chosen":"a","rejected":"b"}""", line);
        var e = Assert.Throws<DatasetRowException>(() => PreferenceReader.Read(path))!;
        Assert.That(e.Message, Is.EqualTo($"{path} line 2: {expected}"));
        Assert.That(e, Is.InstanceOf<UserInputException>(), "the CLI maps it to exit 2");
    }

    [Test]
    public void SkipPolicy_KeepsGoodRows_CountsAndReportsBadOnes()
    {
        var path = Write(
            """{"prompt":"q1","chosen":"a","rejected":"b"}""",
            """{"prompt":"q2","chosen":"a","rejected":"a"}""",
            "{oops",
            """{"prompt":"q3","chosen":"a","rejected":"b"}""",
            """{"prompt":"q4","chosen":"a"}""");
        var read = PreferenceReader.Read(path, BadRowPolicy.Skip, maxReportedErrors: 2);
        Assert.That(read.Select(e => e.Prompt[0].Content), Is.EqualTo(new[] { "q1", "q3" }));
        Assert.That(read.ErrorCount, Is.EqualTo(3), "every bad row is counted");
        Assert.That(read.Errors.Select(e => e.ToString()), Is.EqualTo(new[]
        {
            $"{path} line 2: rejected: {PreferenceReader.IdenticalReason}",
            $"{path} line 3: (line): invalid JSON: unexpected character 'o' at column 2 (expected a property name in double quotes)",
        }), "only the first maxReportedErrors are kept, in file order");
        Assert.That(read.Files.Single().BadRows, Is.EqualTo(3));
        Assert.That(read.TotalRows, Is.EqualTo(5));

        // The recipe's options (data.on_bad_row) select the same policy.
        var viaOptions = PreferenceReader.Read(path, new DataOptions { OnBadRow = BadRowPolicy.Skip }.ReadOptions());
        Assert.That((viaOptions.Count, viaOptions.ErrorCount), Is.EqualTo((2, 3L)));
        Assert.Throws<DatasetRowException>(() => PreferenceReader.Read(path, new DataOptions().ReadOptions()), "the default policy fails");
    }

    [Test]
    public void EmptyFile_IsBadInput_WhateverThePolicy()
    {
        var path = Write();
        var e = Assert.Throws<DatasetRowException>(() => PreferenceReader.Read(path, BadRowPolicy.Skip))!;
        Assert.That(e.Message, Is.EqualTo($"{path}: (file): no rows (the file is empty)"));
    }

    [Test]
    public void Parquet_RoundTrip_SeveralRowGroups_SamePairsAsJsonl()
    {
        var jsonl = SamplePreferenceTests.SamplePath;
        var fromJsonl = PreferenceReader.Read(jsonl);
        var parquet = Path.Combine(TestPaths.TempDir(), "prefs.parquet");
        PreferenceParquetWriter.Write(fromJsonl, parquet, rowGroupSize: 10);

        var fromParquet = PreferenceReader.Read(parquet);
        var n = fromJsonl.Count;
        Assert.That(fromParquet.Files.Single().RowGroups, Is.EqualTo((n + 9) / 10));
        Assert.That(fromParquet.Select(e => e.Location.ToString()), Is.EqualTo(Enumerable.Range(0, n).Select(i => $"{parquet} row {i}")),
            "Parquet rows are numbered from 0 across row groups");
        static string Canon(PreferenceExample e) => string.Join("|", e.Id, e.Category,
            string.Join(";", e.Prompt.Concat(e.Chosen).Concat(e.Rejected).Select(m => $"{m.Role}:{m.Content}:{m.Train}:{m.ReasoningContent}")),
            e.Prompt.Count, e.Chosen.Count);
        Assert.That(fromParquet.Select(Canon), Is.EqualTo(fromJsonl.Select(Canon)));
    }
}
