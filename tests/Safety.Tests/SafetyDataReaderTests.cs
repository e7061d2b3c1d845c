using Qwen35.Data;
using Qwen35.Safety.Data;
using Qwen35.Tests;

namespace Qwen35.Safety.Tests;

public class SafetyDataReaderTests
{
    [Test]
    public void AnswerCarefully_json_array()
    {
        var dir = TestPaths.TempDir();
        var path = Path.Combine(dir, "test.json");
        File.WriteAllText(path, """
            [
              {"ID": "AC_001", "text": "質問1", "output": "参考1", "meta": {"risk-area": "差別"}},
              {"ID": "AC_002", "text": "質問2", "output": "参考2"}
            ]
            """);
        var items = SafetyDataReader.Read(path);
        Assert.That(items, Is.EqualTo(new[]
        {
            new SafetyItem("AC_001", "差別", "質問1", "参考1"),
            new SafetyItem("AC_002", null, "質問2", "参考2"),
        }));
        Assert.That(SafetyDataReader.Read(path, limit: 1), Has.Count.EqualTo(1));
    }

    [Test]
    public void Conversation_jsonl_first_user_turn_and_first_answer()
    {
        var dir = TestPaths.TempDir();
        var path = Path.Combine(dir, "conv.jsonl");
        File.WriteAllText(path,
            """{"id": "c1", "category": "safety_refusal", "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "Q1"}, {"role": "assistant", "content": "A1"}, {"role": "user", "content": "Q2"}, {"role": "assistant", "content": "A2"}]}""" + "\n" +
            """{"messages": [{"role": "user", "content": "Q3"}, {"role": "assistant", "content": "A3"}]}""" + "\n");
        var items = SafetyDataReader.Read(path);
        Assert.That(items[0], Is.EqualTo(new SafetyItem("c1", "safety_refusal", "Q1", "A1")));
        Assert.That(items[1], Is.EqualTo(new SafetyItem("2", null, "Q3", "A3")), "no id: the line number");
    }

    [Test]
    public void Bad_row_names_file_line_and_field()
    {
        var dir = TestPaths.TempDir();
        var path = Path.Combine(dir, "bad.jsonl");
        File.WriteAllText(path, "{\"ID\": \"1\", \"text\": \"q\", \"output\": \"a\"}\n{\"ID\": \"2\", \"text\": 5, \"output\": \"a\"}\n");
        var e = Assert.Throws<DatasetRowException>(() => SafetyDataReader.Read(path));
        Assert.That(e!.Message, Does.StartWith($"{path} line 2: text:"));
    }

    [Test]
    public void Duplicate_id_is_a_bad_row()
    {
        var dir = TestPaths.TempDir();
        var path = Path.Combine(dir, "dup.jsonl");
        File.WriteAllText(path, "{\"ID\": \"1\", \"text\": \"q\", \"output\": \"a\"}\n{\"ID\": \"1\", \"text\": \"q2\", \"output\": \"a\"}\n");
        var e = Assert.Throws<DatasetRowException>(() => SafetyDataReader.Read(path));
        Assert.That(e!.Message, Is.EqualTo($"{path} line 2: ID: duplicate ID '1' (first at line 1); results are keyed by ID"));
    }
}
