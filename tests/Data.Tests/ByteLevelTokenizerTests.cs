using Qwen35.Data;

namespace Qwen35.Data.Tests;

public class ByteLevelTokenizerTests
{
    [Test]
    public void BytesAreIds_SpecialsAreWhole_AndRoundTrip()
    {
        var tok = ByteLevelTokenizer.BuiltIn();
        const string text = "<|im_start|>user\nこんにちは 𠮷<|im_end|>\n<think>\n\n</think>\n\n<|IM_END|>";
        var ids = tok.Encode(text);
        Assert.That(ids[0], Is.EqualTo(tok.TokenToId("<|im_start|>")));
        Assert.That(ids.Count(i => i == tok.EndOfTurnId), Is.EqualTo(1), "<|IM_END|> is plain text");
        Assert.That(tok.Decode(ids), Is.EqualTo(text));
        var utf8 = System.Text.Encoding.UTF8.GetBytes("user\n");
        Assert.That(ids.Skip(1).Take(utf8.Length), Is.EqualTo(utf8.Select(b => (int)b)));
    }

    [Test]
    public void SpecialIds_AndVocabFitTheTinyModel()
    {
        var tok = ByteLevelTokenizer.BuiltIn();
        Assert.That(tok.PadId, Is.EqualTo(256));
        Assert.That(tok.TokenToId("<|im_start|>"), Is.EqualTo(257));
        Assert.That(tok.EndOfTurnId, Is.EqualTo(258));
        Assert.That(tok.TokenToId("</think>"), Is.EqualTo(tok.VocabSize - 1));
        Assert.That(tok.VocabSize, Is.LessThanOrEqualTo(512));
        Assert.That(tok.VocabSize, Is.LessThanOrEqualTo(Qwen35.Models.Config.Qwen35TextConfig.Tiny().VocabSize), "the tiny model embeds every id");
        Assert.That(TokenizerLoader.Load("builtin"), Is.SameAs(tok));
    }

    [Test]
    public void Offsets_MapEveryByteToItsCharacter()
    {
        var (ids, offsets) = ByteLevelTokenizer.BuiltIn().EncodeWithOffsets("aé<think>𠮷");
        Assert.That(ids.Length, Is.EqualTo(1 + 2 + 1 + 4));
        Assert.That(offsets, Is.EqualTo(new[] { (0, 1), (1, 2), (1, 2), (2, 9), (9, 11), (9, 11), (9, 11), (9, 11) }));
    }
}
