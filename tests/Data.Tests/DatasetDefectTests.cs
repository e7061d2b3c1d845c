using System.Text;
using System.Text.Json.Nodes;
using Qwen35.Tests;

namespace Qwen35.Data.Tests;

/// <summary>
/// Reported data defects, each reproduced: empty assistant answers trained as an immediate end of turn, invalid UTF-8
/// trained as U+FFFD, 0-based rows and .NET internals in messages, empty datasets and rows without a trained turn.
/// Expected locations are the 1-based lines of the fixture as an editor shows them.
/// </summary>
public class DatasetDefectTests
{
    const string Good = """{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"a"}]}""";

    static string Write(string name, params string[] lines)
    {
        var path = Path.Combine(TestPaths.TempDir(), name);
        File.WriteAllLines(path, lines);
        return path;
    }

    static DatasetReadResult ReadSkipping(string path) =>
        DatasetReader.Read(path, new DatasetReadOptions(OnError: BadRowPolicy.Skip, MaxReportedErrors: 100));

    [Test]
    public void EmptyAssistantAnswer_IsABadRow_InEveryLayout()
    {
        var path = Write("empty.jsonl",
            Good,
            """{"messages":[{"role":"user","content":"how do I hurt myself?"},{"role":"assistant","content":null}]}""",
            """{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":""}]}""",
            """{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":[]}]}""",
            """{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":[{"type":"text","text":""}]}]}""",
            """{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":" \n\u3000"}]}""",
            """{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"<think>plan</think>\n"}]}""",
            """{"messages":[{"role":"user","content":"q"},{"role":"assistant"}]}""",
            """{"conversations":[{"from":"human","value":"q"},{"from":"gpt","value":""}]}""",
            """{"prompt":"q","completion":""}""",
            """{"prompt":"q","completion":[{"role":"assistant","content":null}]}""",
            """{"instruction":"q","output":""}""",
            """{"text":"q","output":" "}""",
            """{"prefix":"[INST] q [\\INST]","text":"<|end_of_text|>","safe":"false"}""",
            """{"question_turn1":"q1","answer_turn1":"a1","question_turn2":"q2","answer_turn2":""}""",
            // Not empty: a tool call is the answer of its turn.
            """{"messages":[{"role":"user","content":"weather?"},{"role":"assistant","content":null,"tool_calls":[{"function":{"name":"get","arguments":{"city":"x"}}}]},{"role":"tool","content":"sunny"},{"role":"assistant","content":"It is sunny."}]}""");
        var r = ReadSkipping(path);
        var expected = new (int Line, string Field)[]
        {
            (2, "messages[1].content"), (3, "messages[1].content"), (4, "messages[1].content"), (5, "messages[1].content"),
            (6, "messages[1].content"), (7, "messages[1].content"), (8, "messages[1].content"), (9, "conversations[1].value"),
            (10, "completion"), (11, "completion[0].content"), (12, "output"), (13, "output"), (14, "text"), (15, "answer_turn2"),
        };
        Assert.That(r.Errors, Has.Count.EqualTo(expected.Length), string.Join("\n", r.Errors));
        for (var i = 0; i < expected.Length; i++)
            Assert.That(r.Errors[i].ToString(), Does.StartWith($"{path} line {expected[i].Line}: {expected[i].Field}: assistant turn is empty"));
        Assert.That(r.Conversations, Has.Count.EqualTo(2), "the good row and the tool-call row");
        Assert.That(r.Conversations[1].Messages[1].ToolCalls, Has.Count.EqualTo(1));

        // Fail-fast (training's default) stops at the first one, naming it.
        var e = Assert.Throws<DatasetRowException>(() => DatasetReader.Read(path));
        Assert.That(e!.Message, Is.EqualTo($"{path} line 2: messages[1].content: assistant turn is empty (no content and no tool calls)"));
    }

    [Test]
    public void InvalidUtf8_IsABadRow_NamingLineAndByte()
    {
        var path = Path.Combine(TestPaths.TempDir(), "bytes.jsonl");
        var bad = Encoding.UTF8.GetBytes("""{"messages":[{"role":"user","content":"q?"},{"role":"assistant","content":"a"}]}""");
        var at = Array.IndexOf(bad, (byte)'?');
        bad[at] = 0xFF; // not a UTF-8 byte anywhere
        var truncated = Encoding.UTF8.GetBytes("""{"messages":[{"role":"user","content":"日"},{"role":"assistant","content":"a"}]}""");
        var cut = Array.IndexOf(truncated, (byte)0xE6);
        var truncatedLine = truncated[..(cut + 2)].Concat(truncated[(cut + 3)..]).ToArray(); // a 3-byte character missing its last byte
        using (var f = File.Create(path))
        {
            f.Write([0xEF, 0xBB, 0xBF]); // a UTF-8 byte-order mark is fine
            f.Write(Encoding.UTF8.GetBytes(Good + "\n"));
            f.Write(bad);
            f.Write("\n"u8);
            f.Write(Encoding.UTF8.GetBytes(Good + "\r\n"));
            f.Write(truncatedLine);
            f.Write("\n"u8);
        }
        var r = ReadSkipping(path);
        Assert.That(r.Conversations, Has.Count.EqualTo(2));
        Assert.That(r.Conversations.SelectMany(c => c.Messages).Select(m => m.Content), Has.None.Contains('\uFFFD'));
        Assert.That(r.Errors.Select(e => e.ToString()), Is.EqualTo(new[]
        {
            $"{path} line 2: (line): invalid UTF-8 at byte {at + 1} of the line",
            $"{path} line 4: (line): invalid UTF-8 at byte {cut + 1} of the line",
        }));
    }

    [Test]
    public void JsonErrors_NameThe1BasedLineAndColumn_InWords()
    {
        var path = Write("syntax.jsonl",
            Good,
            "",
            """{"messages": x}""",
            "{oops",
            """{"messages":[{"role":"user","content":"日本語"}""",
            """{"a":"日本語" "b":1}""",
            "[1]",
            Good + " {}",
            """{"messages":[],"messages":[]}""",
            "{\"a\":\"x\ty\"}",
            """{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":null,"tool_calls":[{"name":"f","arguments":"{\"x\": tru}"}]}]}""");
        var r = ReadSkipping(path);
        Assert.That(r.Errors.Select(e => e.ToString()), Is.EqualTo(new[]
        {
            $"{path} line 3: (line): invalid JSON: unexpected character 'x' at column 14",
            $"{path} line 4: (line): invalid JSON: unexpected character 'o' at column 2 (expected a property name in double quotes)",
            $"{path} line 5: (line): invalid JSON: the line ends inside an object or list (a '}}' or ']' is missing)",
            $"{path} line 6: (line): invalid JSON: unexpected character '\"' at column 12 (expected ',', '}}' or ']' after a value)",
            $"{path} line 7: (line): expected a JSON object, got a list",
            $"{path} line 8: (line): invalid JSON: unexpected character '{{' at column {Good.Length + 2} (one JSON object per line)",
            $"{path} line 9: (line): invalid JSON: duplicate key 'messages'",
            $"{path} line 10: (line): invalid JSON: control character 0x09 inside a string at column 8 (write it escaped, e.g. \\n)",
            $"{path} line 11: messages[1].tool_calls[0].arguments: invalid JSON: invalid literal 'tru}}' at column 10 (expected true, false or null)",
        }));
        Assert.That(r.Errors.Select(e => e.ToString()), Has.None.Contains("LineNumber").And.None.Contains("BytePositionInLine"));
    }

    [Test]
    public void JsonArrayAndParquet_NameThe0BasedRow()
    {
        var path = Path.Combine(TestPaths.TempDir(), "array.json");
        File.WriteAllText(path, $"[{Good},\n 5,\n {Good.Replace("\"a\"", "\"\"")}]");
        var r = ReadSkipping(path);
        Assert.That(r.Errors.Select(e => e.ToString()), Is.EqualTo(new[]
        {
            $"{path} row 1: (row): expected a JSON object, got a number",
            $"{path} row 2: messages[1].content: assistant turn is empty (no content and no tool calls)",
        }));
    }

    [Test]
    public void EmptyFile_IsBadInput_NamingTheFile()
    {
        foreach (var (name, text) in new[] { ("empty.jsonl", ""), ("blank.jsonl", "\n  \n"), ("empty.json", "[]") })
        {
            var path = Path.Combine(TestPaths.TempDir(), name);
            File.WriteAllText(path, text);
            var e = Assert.Catch<UserInputException>(() => DatasetReader.Read(path, new DatasetReadOptions(OnError: BadRowPolicy.Skip)), name);
            Assert.That(e!.Message, Is.EqualTo($"{path}: (file): no rows (the file is empty)"), name);
        }
    }

    [Test]
    public void RowWithoutTrainedAssistantTurn_InspectSaysWhatTrainingDrops()
    {
        var path = Write("notarget.jsonl",
            Good,
            """{"id":"u1","messages":[{"role":"user","content":"only a question"}]}""",
            """{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"context","train":false}]}""",
            Good);

        // Training: SftDataset drops both, and its notes name them by file and line.
        var read = DatasetReader.Read(path);
        var built = SftDataset.Build(read.Conversations, new SftEncoder(ByteLevelTokenizer.BuiltIn()), 1024, OverLength.Truncate);
        Assert.That((built.Report.Kept, built.Report.DroppedNoTarget), Is.EqualTo((2, 2)));
        Assert.That(built.Report.Notes.Select(n => n.ToString()), Is.EqualTo(new[]
        {
            $"{path} line 2 (id u1): no trained assistant turn",
            $"{path} line 3: no trained assistant turn",
        }));

        // Inspect says the same, with and without a tokenizer.
        foreach (var tokenizer in new ITokenizer?[] { null, ByteLevelTokenizer.BuiltIn() })
        {
            var json = JsonNode.Parse(DatasetInspector.Inspect(path, tokenizer).ToJsonString())!;
            Assert.That(((int?)json["valid"], (int?)json["usable"], (int?)json["dropped_count"]), Is.EqualTo(((int?)4, (int?)2, (int?)2)), $"tokenizer {tokenizer}");
            Assert.That(json["dropped"]!.AsArray().Select(d => ((long)d!["line"]!, (string)d["reason"]!)),
                Is.EqualTo(new[] { (2L, "no trained assistant turn"), (3L, "no trained assistant turn") }));
        }
        var text = DatasetInspector.Inspect(path).ToText();
        Assert.That(text, Does.Contain("usable 2").And.Contain($"{path} line 2 (id u1): no trained assistant turn"));
    }
}
