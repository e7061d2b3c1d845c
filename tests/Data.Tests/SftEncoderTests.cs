using System.Text.Json.Nodes;
using Qwen35.Data;

namespace Qwen35.Data.Tests;

public class SftEncoderTests
{
    static readonly ITokenizer Bytes = ByteLevelTokenizer.BuiltIn();

    /// <summary>The decoded text of the trained positions, one string per maximal run of trained tokens.</summary>
    static List<string> TrainedRuns(ITokenizer tok, EncodedConversation e)
    {
        var runs = new List<string>();
        var current = new List<int>();
        for (var t = 0; t <= e.InputIds.Length; t++)
        {
            if (t < e.InputIds.Length && e.Labels[t] != TokenizedExample.IgnoreIndex) { current.Add(e.Labels[t]); continue; }
            if (current.Count > 0) runs.Add(tok.Decode(current));
            current.Clear();
        }
        return runs;
    }

    static Conversation MultiTurn(bool? firstTrain = null) => new(
    [
        new ChatMessage(Roles.System, "sys"),
        new ChatMessage(Roles.User, "q1"),
        new ChatMessage(Roles.Assistant, " a1 ", Train: firstTrain),
        new ChatMessage(Roles.User, "q2"),
        new ChatMessage(Roles.Assistant, "a2"),
    ], "safety_refusal", "c1");

    [Test]
    public void Default_TrainsEachAssistantContentAndItsImEnd_NotHeaderNotThinkBlock()
    {
        var e = new SftEncoder(Bytes).EncodeDetailed(MultiTurn());
        Assert.That(TrainedRuns(Bytes, e), Is.EqualTo(new[] { "a1<|im_end|>", "a2<|im_end|>" }));
        Assert.That(e.Text, Does.Contain("<|im_start|>assistant\n<think>\n\n</think>\n\na2<|im_end|>\n"));
        for (var t = 0; t < e.InputIds.Length; t++)
            if (e.Labels[t] != TokenizedExample.IgnoreIndex) Assert.That(e.Labels[t], Is.EqualTo(e.InputIds[t]), "labels are aligned (unshifted)");
    }

    [Test]
    public void TrainThinkBlock_TrainsFromAfterTheAssistantHeader()
    {
        var e = new SftEncoder(Bytes, new MaskOptions(TrainThinkBlock: true)).EncodeDetailed(MultiTurn());
        Assert.That(TrainedRuns(Bytes, e), Is.EqualTo(new[] { "a1<|im_end|>", "<think>\n\n</think>\n\na2<|im_end|>" }));
    }

    [Test]
    public void TrainFalse_And_LastOnly_MaskEarlierTurns()
    {
        Assert.That(TrainedRuns(Bytes, new SftEncoder(Bytes).EncodeDetailed(MultiTurn(firstTrain: false))), Is.EqualTo(new[] { "a2<|im_end|>" }));
        var last = new SftEncoder(Bytes, new MaskOptions(AssistantTurns: AssistantTurns.Last)).EncodeDetailed(MultiTurn());
        Assert.That(TrainedRuns(Bytes, last), Is.EqualTo(new[] { "a2<|im_end|>" }));
        var userTrained = MultiTurn() with { Messages = [.. MultiTurn().Messages.Select((m, i) => i == 1 ? m with { Train = true } : m)] };
        Assert.That(TrainedRuns(Bytes, new SftEncoder(Bytes).EncodeDetailed(userTrained)), Is.EqualTo(new[] { "q1<|im_end|>", "a1<|im_end|>", "a2<|im_end|>" }));
    }

    [Test]
    public void MidRefusal_Parts_LeadInMasked_CorrectionTrained()
    {
        var conv = new Conversation(
        [
            new ChatMessage(Roles.User, "爆弾の作り方は？"),
            ChatMessage.FromParts(Roles.Assistant,
            [
                new ChatMessage.Part("まず材料を集めて、", Train: false),
                new ChatMessage.Part("……いいえ、この説明は危険なのでお手伝いできません。"),
            ]),
        ], "mid_refusal");
        var e = new SftEncoder(Bytes).EncodeDetailed(conv);
        Assert.That(TrainedRuns(Bytes, e), Is.EqualTo(new[] { "……いいえ、この説明は危険なのでお手伝いできません。<|im_end|>" }));
    }

    [Test]
    public void TrainDetail_EndOffsetIsExclusive_AndMapsThroughTrimming()
    {
        // Leading spaces are trimmed by the template; offsets refer to the content as given.
        const string content = "  lead-in. correction.";
        var lead = content.IndexOf("lead", StringComparison.Ordinal);
        var corr = content.IndexOf("correction", StringComparison.Ordinal);
        var conv = new Conversation(
        [
            new ChatMessage(Roles.User, "q"),
            new ChatMessage(Roles.Assistant, content, TrainDetail:
            [
                new TrainSpan(lead, corr, false),
                new TrainSpan(corr, content.Length, true),
            ]),
        ]);
        var e = new SftEncoder(Bytes).EncodeDetailed(conv);
        Assert.That(TrainedRuns(Bytes, e), Is.EqualTo(new[] { "correction.<|im_end|>" }));
    }

    [Test]
    public void Rto_TargetsTheFirstRefusalToken_AtEveryTrainedPosition()
    {
        var conv = new Conversation(
        [
            new ChatMessage(Roles.User, "q"),
            ChatMessage.FromParts(Roles.Assistant, [new ChatMessage.Part("harm", Rto: true), new ChatMessage.Part("No.")]),
        ]);
        var enc = new SftEncoder(Bytes, new MaskOptions(RtoRefusal: "Sorry"));
        var e = enc.EncodeDetailed(conv);
        Assert.That(enc.RefusalId, Is.EqualTo((int)'S'));
        var start = e.Text.IndexOf("harm", StringComparison.Ordinal);
        var rtoPositions = Enumerable.Range(0, e.InputIds.Length).Where(t => e.Offsets[t].Start >= start && e.Offsets[t].End <= start + 4).ToList();
        Assert.That(rtoPositions, Has.Count.EqualTo(4));
        Assert.That(rtoPositions.Select(t => e.Labels[t]), Is.All.EqualTo((int)'S'));
        Assert.That(TrainedRuns(Bytes, e), Is.EqualTo(new[] { "SSSSNo.<|im_end|>" }));

        // An RTO-only answer (DeRTa's RTO row) also relabels its <|im_end|>: no clean stop after harmful text.
        var rtoOnly = enc.EncodeDetailed(new Conversation(
        [
            new ChatMessage(Roles.User, "q"),
            ChatMessage.FromParts(Roles.Assistant, [new ChatMessage.Part("harm", Rto: true)]),
        ]));
        Assert.That(TrainedRuns(Bytes, rtoOnly), Is.EqualTo(new[] { "SSSSS" }));
    }

    [Test]
    public void Seam_InsideOneBpeToken_FollowsTheSeamRule()
    {
        // "こんにちは" is ONE Qwen3 token (cases.json p-s01), so a lead-in/correction seam after "こん" straddles it.
        var tok = TokenizerFixtures.Qwen3;
        var conv = new Conversation(
        [
            new ChatMessage(Roles.User, "q"),
            ChatMessage.FromParts(Roles.Assistant, [new ChatMessage.Part("。こん", Train: false), new ChatMessage.Part("にちは。")]),
        ]);
        var within = new SftEncoder(tok).EncodeDetailed(conv);
        var overlap = new SftEncoder(tok, new MaskOptions(SeamRule: SeamRule.Overlap)).EncodeDetailed(conv);
        var hello = Array.IndexOf(within.InputIds, 89015);
        Assert.That(hello, Is.GreaterThan(0), "the straddling token is present");
        Assert.That(within.Labels[hello], Is.EqualTo(TokenizedExample.IgnoreIndex), "Within: the straddling token is context");
        Assert.That(overlap.Labels[hello], Is.EqualTo(89015), "Overlap: the straddling token is a target");
        // Everything after the straddling token up to <|im_end|> is trained in both; everything before is not.
        var end = Array.LastIndexOf(within.InputIds, tok.EndOfTurnId);
        for (var t = hello + 1; t <= end; t++) Assert.That(within.Labels[t], Is.EqualTo(within.InputIds[t]));
        for (var t = 0; t < hello; t++) Assert.That(within.Labels[t], Is.EqualTo(TokenizedExample.IgnoreIndex));
    }

    public static IEnumerable<string> FullRenderIds => TokenizerFixtures.RenderIds.Where(r => r.EndsWith("/full", StringComparison.Ordinal));

    [TestCaseSource(nameof(FullRenderIds))]
    public void Qwen3_FixtureConversations_TrainExactlyTheAssistantAnswers(string renderId)
    {
        var (conv, render) = TokenizerFixtures.Render(renderId);
        var tok = TokenizerFixtures.Qwen3;
        var messages = ConversationJson.ParseMessages(conv["messages"]!.DeepClone(), "messages");
        var e = new SftEncoder(tok).EncodeDetailed(new Conversation(messages));
        Assert.That(e.InputIds, Is.EqualTo(TokenizerFixtures.Ids(render["expected"]!)), "ids equal the whole-string reference ids");
        var rendered = ChatTemplate.Render(messages);
        var expected = rendered.Turns.Where(t => t.Role == Roles.Assistant)
            .Select(t => rendered.Text[t.ContentStart..t.ContentEnd] + "<|im_end|>")
            .Select(s => s.Normalize(System.Text.NormalizationForm.FormC));
        Assert.That(TrainedRuns(tok, e), Is.EqualTo(expected));
    }

    [Test]
    public void FitLength_TruncatesKeepStart_OrDrops()
    {
        var ex = new TokenizedExample([1, 2, 3, 4, 5], [-100, -100, 3, 4, 5], "c", "i");
        Assert.That(SftEncoder.FitLength(ex, 5, OverLength.Drop), Is.SameAs(ex));
        Assert.That(SftEncoder.FitLength(ex, 4, OverLength.Drop), Is.Null);
        var cut = SftEncoder.FitLength(ex, 4, OverLength.Truncate)!;
        Assert.That(cut.InputIds, Is.EqualTo(new[] { 1, 2, 3, 4 }));
        Assert.That(cut.Labels, Is.EqualTo(new[] { -100, -100, 3, 4 }));
        Assert.That(SftEncoder.FitLength(ex, 2, OverLength.Truncate), Is.Null, "nothing trained survives");
    }

    [Test]
    public void ParsedJsonRow_WithPartsAndTrainDetail_GivesTheSameLabels()
    {
        var parts = JsonNode.Parse("""{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":[{"type":"text","text":"lead ","train":false},{"type":"text","text":"fix"}]}]}""")!.AsObject();
        var detail = JsonNode.Parse("""{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"lead fix","train_detail":[{"begin_offset":0,"end_offset":5,"train":false},{"begin_offset":5,"end_offset":8,"train":true}]}]}""")!.AsObject();
        var inclusive = JsonNode.Parse("""{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"lead fix","train_detail":[{"begin_offset":0,"end_offset":4,"train":false},{"begin_offset":5,"end_offset":7,"train":true}]}]}""")!.AsObject();
        var a = new SftEncoder(Bytes).Encode(ConversationJson.Parse(parts));
        var b = new SftEncoder(Bytes).Encode(ConversationJson.Parse(detail));
        Assert.That(a.InputIds, Is.EqualTo(b.InputIds));
        Assert.That(a.Labels, Is.EqualTo(b.Labels));
        Assert.That(a.TrainedTokens, Is.EqualTo("fix".Length + 1));
        var c = new SftEncoder(Bytes).Encode(ConversationJson.Parse(inclusive, TrainDetailEnd.Inclusive));
        Assert.That(c.Labels, Is.EqualTo(a.Labels), "axolotl-style inclusive ends read with TrainDetailEnd.Inclusive");
    }
}
