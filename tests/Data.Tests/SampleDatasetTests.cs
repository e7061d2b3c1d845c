using System.Text.Json.Nodes;
using Qwen35.Data;
using Qwen35.Tests;

namespace Qwen35.Data.Tests;

/// <summary>The bundled sample (data/sample, written by the dataset engineer) and its Parquet copy.</summary>
public class SampleDatasetTests
{
    static string Jsonl => Path.Combine(TestPaths.RepoRoot, "data", "sample", "ja_safety_sample.jsonl");
    static string Parquet => Path.Combine(TestPaths.RepoRoot, "data", "sample", "ja_safety_sample.parquet");

    [Test]
    public void Parquet_HasSeveralRowGroups_AndTheSameConversationsAsJsonl()
    {
        var j = DatasetReader.Read(Jsonl);
        var p = DatasetReader.Read(Parquet);
        Assert.That(p.Files.Single().RowGroups, Is.GreaterThan(1));
        Assert.That(p.Conversations, Has.Count.EqualTo(80));
        Assert.That(p.Conversations.Select(c => ConversationJson.ToJson(c).ToJsonString()),
            Is.EqualTo(j.Conversations.Select(c => ConversationJson.ToJson(c).ToJsonString())));
        Assert.That(CategoryTools.Counts(p.Conversations.Select(c => c.Category)).Values, Is.All.EqualTo(20));
    }

    static IEnumerable<(Conversation Conversation, int Index)> MidRefusals()
    {
        var read = DatasetReader.Read(Jsonl);
        return read.Conversations.Select((c, i) => (c, i)).Where(x => x.c.Category == "mid_refusal");
    }

    /// <summary>The final assistant message's correction: the trained parts/spans of its content.</summary>
    static string Correction(ChatMessage m) =>
        string.Concat(m.TrainDetail!.Where(s => s.Train != false).Select(s => m.Content![s.BeginOffset..s.EndOffset]));

    [Test]
    public void MidRefusal_BuiltinTokenizer_TrainsExactlyTheCorrectionAndImEnd()
    {
        var tok = ByteLevelTokenizer.BuiltIn();
        var encoder = new SftEncoder(tok);
        var count = 0;
        foreach (var (c, _) in MidRefusals())
        {
            var last = c.Messages[^1];
            var e = encoder.Encode(c);
            var trained = tok.Decode(e.Labels.Where(l => l != TokenizedExample.IgnoreIndex));
            // Earlier assistant turns of the escalation records carry train:false, so only the correction remains.
            Assert.That(trained, Is.EqualTo(PyText.Strip(Correction(last)) + "<|im_end|>"), c.Id);
            count++;
        }
        Assert.That(count, Is.EqualTo(20));
    }

    [Test]
    public void MidRefusal_Qwen3Tokenizer_NeverTrainsALeadInCharacter()
    {
        var tok = TokenizerFixtures.Qwen3;
        var encoder = new SftEncoder(tok);
        foreach (var (c, _) in MidRefusals())
        {
            var e = encoder.EncodeDetailed(c);
            var rendered = ChatTemplate.Render(c.Messages);
            var turn = rendered.Turns[^1];
            var last = c.Messages[^1];
            var shift = turn.ContentStart - turn.RawContentOffset;
            var leadChars = new HashSet<int>(last.TrainDetail!.Where(s => s.Train == false)
                .SelectMany(s => Enumerable.Range(s.BeginOffset + shift, s.EndOffset - s.BeginOffset)));
            var trainedTokens = Enumerable.Range(0, e.InputIds.Length).Where(t => e.Labels[t] != TokenizedExample.IgnoreIndex).ToList();
            Assert.That(trainedTokens, Is.Not.Empty, c.Id);
            foreach (var t in trainedTokens)
                Assert.That(Enumerable.Range(e.Offsets[t].Start, e.Offsets[t].End - e.Offsets[t].Start).Any(leadChars.Contains), Is.False,
                    $"{c.Id}: token {t} '{e.Text[e.Offsets[t].Start..e.Offsets[t].End]}' overlaps the lead-in");
            Assert.That(e.Labels[Array.LastIndexOf(e.InputIds, tok.EndOfTurnId)], Is.EqualTo(tok.EndOfTurnId), $"{c.Id}: <|im_end|> trained");
            // The correction's tokens after the seam token are all trained.
            var correctionEnd = turn.ContentEnd;
            var firstTrained = trainedTokens[0];
            for (var t = firstTrained; e.Offsets[t].End <= correctionEnd; t++)
                Assert.That(e.Labels[t], Is.EqualTo(e.InputIds[t]), $"{c.Id}: token {t}");
        }
    }
}
