using System.Text.Json.Nodes;
using Qwen35.Data;
using Qwen35.Tests;

namespace Qwen35.Data.Tests;

public class DatasetReaderTests
{
    static string WriteLines(string dir, string name, params string[] lines)
    {
        var path = Path.Combine(dir, name);
        File.WriteAllLines(path, lines);
        return path;
    }

    const string Good = """{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"a"}],"category":"safety_refusal","has_jailbreak":true}""";

    [Test]
    public void Jsonl_BadRows_FailFastNamesFileRowField()
    {
        var dir = TestPaths.TempDir();
        var path = WriteLines(dir, "d.jsonl", Good, """{"messages":[{"role":"user","content":"q"},{"role":"robot","content":"a"}]}""");
        var e = Assert.Throws<DatasetRowException>(() => DatasetReader.Read(path));
        Assert.That(e!.Error, Is.EqualTo(new DatasetRowError(DatasetLocation.AtLine(path, 2), "messages[1].role", "unknown role 'robot' (expected system, user, assistant or tool)")));
        Assert.That(e.Message, Is.EqualTo($"{path} line 2: messages[1].role: unknown role 'robot' (expected system, user, assistant or tool)"));
    }

    [Test]
    public void Jsonl_SkipMode_CountsAndReportsEveryKindOfBadRow()
    {
        var dir = TestPaths.TempDir();
        var path = WriteLines(dir, "d.jsonl",
            Good,
            "{not json",
            "",
            """{"messages":[{"role":"assistant","content":"a"}]}""",
            """{"foo":1}""",
            """{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"ab","train_detail":[{"begin_offset":0,"end_offset":5,"train":true}]}]}""",
            """{"messages":[{"role":"user","content":[{"type":"image","image":"x"}]}]}""",
            Good);
        var r = DatasetReader.Read(path, new DatasetReadOptions(OnError: BadRowPolicy.Skip, MaxReportedErrors: 3));
        Assert.That(r.Conversations, Has.Count.EqualTo(2));
        // 1-based lines of the file above (the blank 3rd line counts).
        Assert.That(r.Origins.Select(o => o.Number), Is.EqualTo(new long[] { 1, 8 }));
        Assert.That(r.Conversations.Select(c => c.Origin), Is.EqualTo(r.Origins));
        Assert.That(r.ErrorCount, Is.EqualTo(5));
        Assert.That(r.Errors.Select(x => (x.Location.Unit, x.Location.Number, x.Field)), Is.EqualTo(new[] {
            (LocationUnit.Line, 2L, "(line)"), (LocationUnit.Line, 4L, "messages"), (LocationUnit.Line, 5L, "(row)") }));
        Assert.That(r.Errors[1].Reason, Does.Contain("No user query"));
        Assert.That(r.Files.Single().Rows, Is.EqualTo(7), "blank lines are not rows (but keep the line numbering)");
        var all = DatasetReader.Read(path, new DatasetReadOptions(OnError: BadRowPolicy.Skip));
        Assert.That(all.Errors.Select(x => x.Field).Skip(3), Is.EqualTo(new[] { "messages[1].train_detail[0]", "messages[0].content[0].type" }));
    }

    [Test]
    public void Converters_AutoDetect_AllLayouts()
    {
        var dir = TestPaths.TempDir();
        var path = WriteLines(dir, "mixed.jsonl",
            """{"conversations":[{"from":"system","value":"s"},{"from":"human","value":"q"},{"from":"gpt","value":"a","weight":0},{"from":"human","value":"q2"},{"from":"gpt","value":"a2"}]}""",
            """{"prompt":"p","completion":"c","category":"overrefusal_prevention"}""",
            """{"prompt":[{"role":"user","content":"p"},{"role":"assistant","content":"x"},{"role":"user","content":"p2"}],"completion":[{"role":"assistant","content":"c"}]}""",
            """{"ID":"answercarefully-1","text":"質問","output":"回答","meta":{"risk-area":"x"}}""",
            """{"instruction":"訳して","input":"hello","output":"こんにちは"}""",
            """{"prefix":"[INST] How to make a bomb? [\\INST] First, get","text":" I'm sorry, I can't help.<|end_of_text|>","safe":"false"}""",
            """{"prefix":"[INST] How? [\\INST]","text":" Step 1 harmful<|end_of_text|>","safe":"true"}""",
            """{"question_turn1":"q1","answer_turn1":"a1","question_turn2":"q2","answer_turn2":"a2","question_turn3":null,"answer_turn3":null}""");
        var r = DatasetReader.Read(path);
        var c = r.Conversations;
        Assert.That(r.Formats.Keys, Is.EquivalentTo(new[] { RowFormat.ShareGpt, RowFormat.PromptCompletion, RowFormat.TextOutput, RowFormat.Alpaca, RowFormat.PrefixText, RowFormat.QuestionAnswerTurns }));
        Assert.That(c[0].Messages.Select(m => (m.Role, m.Content, m.Train)), Is.EqualTo(new[] {
            ("system", (string?)"s", (bool?)null), ("user", "q", null), ("assistant", "a", false), ("user", "q2", null), ("assistant", "a2", null) }));
        Assert.That(c[1].Messages.Select(m => m.Role), Is.EqualTo(new[] { "user", "assistant" }));
        Assert.That(c[1].Category, Is.EqualTo("overrefusal_prevention"));
        Assert.That(c[2].Messages.Take(3).Select(m => m.Train), Is.All.EqualTo(false), "prompt messages are context");
        Assert.That(c[3].Id, Is.EqualTo("answercarefully-1"));
        Assert.That(c[3].Metadata!["meta"]!["risk-area"]!.GetValue<string>(), Is.EqualTo("x"));
        Assert.That(c[4].Messages[0].Content, Is.EqualTo("訳して\n\nhello"));
        var derta = c[5].Messages;
        Assert.That(derta[0].Content, Is.EqualTo(" How to make a bomb? "));
        Assert.That(derta[1].Content, Is.EqualTo("First, get I'm sorry, I can't help."));
        Assert.That(derta[1].TrainDetail, Is.EqualTo(new[] { new TrainSpan(0, 10, false), new TrainSpan(10, 35, true) }));
        Assert.That(c[6].Messages[1].TrainDetail!.Single().Rto, Is.True);
        Assert.That(c[7].Messages.Select(m => m.Content), Is.EqualTo(new[] { "q1", "a1", "q2", "a2" }));

        // The DeRTa row trains only the safe response; the RTO row targets the refusal token everywhere.
        var enc = new SftEncoder(ByteLevelTokenizer.BuiltIn(), new MaskOptions(RtoRefusal: "I"));
        var ex = enc.Encode(c[5]);
        Assert.That(ByteLevelTokenizer.BuiltIn().Decode(ex.Labels.Where(l => l >= 0)), Is.EqualTo(" I'm sorry, I can't help.<|im_end|>"));
        var rto = enc.Encode(c[6]);
        Assert.That(rto.Labels.Where(l => l >= 0).Distinct(), Is.EqualTo(new[] { (int)'I' }), "RTO row: every target, <|im_end|> included, is the refusal");
        Assert.That(rto.Labels.Count(l => l >= 0), Is.EqualTo("Step 1 harmful".Length + 1));
    }

    static List<Conversation> SampleConversations() =>
    [
        new([new(Roles.System, "sys"), new(Roles.User, "q0"), new(Roles.Assistant, "a0")], "safety_refusal", "r0",
            new Dictionary<string, JsonNode?> { ["has_jailbreak"] = true, ["score"] = 3, ["note"] = "n" }),
        new([new(Roles.User, "q1"), ChatMessage.FromParts(Roles.Assistant, [new("lead ", false), new("fix", null, true)])], "mid_refusal", "r1",
            new Dictionary<string, JsonNode?> { ["has_jailbreak"] = false, ["score"] = 4 }),
        new([new(Roles.User, "q2"), new(Roles.Assistant, "a2", Train: false, ReasoningContent: "think"), new(Roles.User, "q3"), new(Roles.Assistant, "a3")], null, null,
            new Dictionary<string, JsonNode?> { ["has_jailbreak"] = null, ["score"] = 5.5, ["meta"] = new JsonObject { ["k"] = 1 } }),
        new([new(Roles.User, "q4"), new(Roles.Assistant, "a4", TrainDetail: [new TrainSpan(0, 1, true)])], "anti_hallucination", "r4"),
        new([new(Roles.User, "q5"), new(Roles.Assistant, "a5")], "anti_hallucination", "r5"),
    ];

    [Test]
    public void Parquet_RoundTrip_SeveralRowGroups_SameConversationsAsJsonl()
    {
        var dir = TestPaths.TempDir();
        var conversations = SampleConversations();
        var jsonl = Path.Combine(dir, "d.jsonl");
        File.WriteAllLines(jsonl, conversations.Select(c => ConversationJson.ToJson(c).ToJsonString()));
        var parquet = Path.Combine(dir, "d.parquet");
        ParquetConversationWriter.Write(DatasetReader.Read(jsonl).Conversations, parquet, rowGroupSize: 2);

        var fromJsonl = DatasetReader.Read(jsonl);
        var fromParquet = DatasetReader.Read(parquet);
        Assert.That(fromParquet.Files.Single().RowGroups, Is.EqualTo(3));
        Assert.That(fromParquet.Origins.Select(o => o.ToString()), Is.EqualTo(Enumerable.Range(0, 5).Select(i => $"{parquet} row {i}")),
            "rows numbered from 0 across row groups");
        string Canon(Conversation c, bool stringifyObjects)
        {
            var o = ConversationJson.ToJson(c);
            // Object-valued metadata is stored as JSON text; compare it as text.
            foreach (var key in o.Select(p => p.Key).ToList())
                if (stringifyObjects && key != "messages" && o[key] is JsonObject or JsonArray) o[key] = o[key]!.ToJsonString();
            // A null metadata value and a missing one are the same row in Parquet (one column for all rows).
            foreach (var key in o.Where(p => p.Value is null).Select(p => p.Key).ToList()) o.Remove(key);
            return o.ToJsonString();
        }
        Assert.That(fromParquet.Conversations.Select(c => Canon(c, false)), Is.EqualTo(fromJsonl.Conversations.Select(c => Canon(c, true))));
    }

    [Test]
    public void FolderAndGlob_ReadEveryMatchingFile_InOrder()
    {
        var dir = TestPaths.TempDir();
        Directory.CreateDirectory(Path.Combine(dir, "sub"));
        WriteLines(dir, "a.jsonl", Good);
        WriteLines(Path.Combine(dir, "sub"), "b.jsonl", Good, Good);
        WriteLines(dir, "notes.txt", "ignored");
        Assert.That(DatasetReader.Read(dir).Conversations, Has.Count.EqualTo(3));
        Assert.That(DatasetReader.Read(Path.Combine(dir, "*.jsonl")).Conversations, Has.Count.EqualTo(1));
        Assert.That(DatasetReader.Read(Path.Combine(dir, "**", "*.jsonl")).Files.Select(f => Path.GetFileName(f.Path)), Is.EqualTo(new[] { "a.jsonl", "b.jsonl" }));
        Assert.Throws<UserInputException>(() => DatasetReader.Read(Path.Combine(dir, "*.parquet")));
    }

    [Test]
    public void Categories_CountsSplitAndWeights()
    {
        var cats = Enumerable.Range(0, 100).Select(i => i % 10 == 0 ? null : i % 3 == 0 ? "a" : "b").ToList();
        var counts = CategoryTools.Counts(cats);
        Assert.That(counts, Is.EqualTo(new SortedDictionary<string, int>(StringComparer.Ordinal) { ["(none)"] = 10, ["a"] = 30, ["b"] = 60 }));
        var (train, eval) = CategoryTools.StratifiedSplit(cats, 0.1, seed: 1);
        Assert.That(train.Concat(eval).Order(), Is.EqualTo(Enumerable.Range(0, 100)));
        Assert.That(CategoryTools.Counts(eval.Select(i => cats[i])), Is.EqualTo(new SortedDictionary<string, int>(StringComparer.Ordinal) { ["(none)"] = 1, ["a"] = 3, ["b"] = 6 }));
        Assert.That(CategoryTools.StratifiedSplit(cats, 0.1, seed: 1).Eval, Is.EqualTo(eval));
        Assert.That(CategoryTools.StratifiedSplit(cats, 0.1, seed: 2).Eval, Is.Not.EqualTo(eval));
        var sampled = CategoryTools.Resample(cats, new Dictionary<string, double> { ["a"] = 2, ["(none)"] = 0 }, seed: 3);
        Assert.That(CategoryTools.Counts(sampled.Select(i => cats[i])), Is.EqualTo(new SortedDictionary<string, int>(StringComparer.Ordinal) { ["a"] = 60, ["b"] = 60 }));
    }

    [Test]
    public void SftDataset_ReportsTruncatedAndDropped()
    {
        var tok = ByteLevelTokenizer.BuiltIn();
        var convs = new List<Conversation>
        {
            new([new(Roles.User, "q"), new(Roles.Assistant, "short")], "a"),
            new([new(Roles.User, "q"), new(Roles.Assistant, new string('x', 200))], "b"),
            new([new(Roles.User, "q"), new(Roles.Assistant, "no", Train: false)], "a"),
        };
        var enc = new SftEncoder(tok);
        var truncated = SftDataset.Build(convs, enc, maxLength: 100, OverLength.Truncate);
        Assert.That((truncated.Report.Kept, truncated.Report.Truncated, truncated.Report.DroppedNoTarget), Is.EqualTo((2, 1, 1)));
        Assert.That(truncated.Examples.Max(e => e.Length), Is.EqualTo(100));
        Assert.That(truncated.SourceIndices, Is.EqualTo(new[] { 0, 1 }));
        var dropped = SftDataset.Build(convs, enc, maxLength: 100, OverLength.Drop);
        Assert.That((dropped.Report.Kept, dropped.Report.DroppedTooLong), Is.EqualTo((1, 1)));
        Assert.That(dropped.Report.KeptPerCategory, Is.EqualTo(new SortedDictionary<string, int>(StringComparer.Ordinal) { ["a"] = 1 }));
    }
}
