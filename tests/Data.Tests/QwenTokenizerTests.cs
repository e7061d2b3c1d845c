using System.Text;
using Qwen35.Data;

namespace Qwen35.Data.Tests;

public class QwenTokenizerTests
{
    [TestCaseSource(typeof(TokenizerFixtures), nameof(TokenizerFixtures.CaseIds))]
    public void Encode_MatchesReferenceIds(string caseId)
    {
        var c = TokenizerFixtures.Case(caseId);
        var ids = TokenizerFixtures.Qwen3.Encode((string)c["text"]!);
        Assert.That(ids, Is.EqualTo(TokenizerFixtures.Ids(c["expected"]!)));
    }

    [TestCaseSource(typeof(TokenizerFixtures), nameof(TokenizerFixtures.CaseIds))]
    public void Decode_RoundTripsOrGivesTheNfcForm(string caseId)
    {
        var c = TokenizerFixtures.Case(caseId);
        var expected = c["expected"]!["qwen3"]!;
        var decoded = TokenizerFixtures.Qwen3.Decode(TokenizerFixtures.Ids(c["expected"]!));
        var want = (bool)expected["decode_roundtrip"]! ? (string)c["text"]! : (string)expected["decoded"]!;
        Assert.That(decoded, Is.EqualTo(want));
    }

    [TestCaseSource(typeof(TokenizerFixtures), nameof(TokenizerFixtures.RenderIds))]
    public void Encode_ChatRender_MatchesReferenceIds(string renderId)
    {
        var (_, render) = TokenizerFixtures.Render(renderId);
        var ids = TokenizerFixtures.Qwen3.Encode((string)render["text"]!);
        Assert.That(ids, Is.EqualTo(TokenizerFixtures.Ids(render["expected"]!)));
    }

    [TestCaseSource(typeof(TokenizerFixtures), nameof(TokenizerFixtures.CaseIds))]
    public void EncodeWithOffsets_EachWholeCharTokenIsItsSourceText(string caseId)
    {
        // Identity: every token whose bytes are whole characters decodes to exactly the text its offsets cover
        // (NFC-normalised for the non-NFC inputs); split characters give U+FFFD and share one character's range.
        var text = (string)TokenizerFixtures.Case(caseId)["text"]!;
        var tok = TokenizerFixtures.Qwen3;
        var (ids, offsets) = tok.EncodeWithOffsets(text);
        Assert.That(ids, Is.EqualTo(tok.Encode(text)));
        var covered = new bool[text.Length];
        var previousStart = 0;
        for (var i = 0; i < ids.Length; i++)
        {
            var (s, e) = offsets[i];
            Assert.That(s, Is.GreaterThanOrEqualTo(0).And.LessThan(e), $"token {i}");
            Assert.That(e, Is.LessThanOrEqualTo(text.Length));
            Assert.That(s, Is.GreaterThanOrEqualTo(previousStart), "token starts never go back");
            previousStart = s;
            for (var k = s; k < e; k++) covered[k] = true;
            var piece = tok.Decode([ids[i]]);
            if (piece.Contains('\uFFFD')) continue;
            var span = text[s..e];
            // Where NFC rewrote the input, offsets cover whole original clusters, so the span may hold a bit more.
            if (span.IsNormalized(NormalizationForm.FormC)) Assert.That(piece, Is.EqualTo(span), $"token {i} offsets ({s},{e})");
            else Assert.That(span.Normalize(NormalizationForm.FormC), Does.Contain(piece), $"token {i} offsets ({s},{e})");
        }
        Assert.That(covered, Is.All.True, "every input char belongs to some token");
    }

    [Test]
    public void AddedTokens_AreMatchedWhole_NearMissesAreText()
    {
        var tok = TokenizerFixtures.Qwen3;
        Assert.That(tok.Encode("<|im_end|>"), Is.EqualTo(new[] { 151645 }));
        Assert.That(tok.Encode("<think></think>"), Is.EqualTo(new[] { 151667, 151668 }));
        var nearMiss = tok.Encode("<|IM_END|><think ></thinking>");
        Assert.That(nearMiss, Has.None.InRange(151643, 151668));
        Assert.That(tok.Decode(nearMiss), Is.EqualTo("<|IM_END|><think ></thinking>"));
    }

    [Test]
    public void SpecialIds_ComeFromTheFiles()
    {
        var tok = TokenizerFixtures.Qwen3;
        Assert.That(tok.EndOfTurnId, Is.EqualTo(151645));
        Assert.That(tok.PadId, Is.EqualTo(151643));
        Assert.That(tok.StopIds, Is.EquivalentTo(new[] { 151645, 151643 }));
        Assert.That(tok.VocabSize, Is.EqualTo(151669));
        Assert.That(tok.TokenToId("<think>"), Is.EqualTo(151667));
        Assert.That(tok.TokenToId("user"), Is.EqualTo(872));
        Assert.That(tok.Normalizes, Is.True);
    }
}
