using Qwen35.Data.Preference;

namespace Qwen35.Data.Tests.Preference;

/// <summary>
/// Tokenized pairs are exactly the SFT encoding of prompt + answer (same tokens, completion = SFT's trained span), and
/// the prompt is cut from the left as TRL's keep_end does.
/// </summary>
public class PreferenceTokenizerTests
{
    static readonly ITokenizer Bytes = ByteLevelTokenizer.BuiltIn();

    static PreferenceExample Pair(IReadOnlyList<ChatMessage> prompt, string chosen, string rejected) =>
        new("p1", "safety_refusal", prompt, [new ChatMessage(Roles.Assistant, chosen)], [new ChatMessage(Roles.Assistant, rejected)], "prefs.jsonl", 4);

    static readonly ChatMessage[] MultiTurnPrompt =
    [
        new(Roles.System, "sys"),
        new(Roles.User, "q1"),
        new(Roles.Assistant, "a1"),
        new(Roles.User, "まだ？"),
    ];

    static IEnumerable<ITokenizer> Tokenizers()
    {
        yield return Bytes;
        yield return TokenizerFixtures.Qwen3; // the real BPE (Ignored, with the reason, where ../shared is absent)
    }

    [TestCase(0)]
    [TestCase(1)]
    public void PromptAndCompletion_AreTheSftEncoding_OfPromptPlusAnswer(int tokenizerIndex)
    {
        var tok = Tokenizers().ElementAt(tokenizerIndex);
        var pair = PreferenceTokenizer.Tokenize([Pair(MultiTurnPrompt, "申し訳ありませんが、お答えできません。", "いいですよ。")], new SftEncoder(tok), 4096).Single();

        foreach (var (answer, completion) in new[] { ("申し訳ありませんが、お答えできません。", pair.ChosenIds), ("いいですよ。", pair.RejectedIds) })
        {
            // Independent expectation: the SFT path on the same conversation, training only its last assistant turn.
            var sft = new SftEncoder(tok, new MaskOptions(AssistantTurns: AssistantTurns.Last))
                .Encode(new Conversation([.. MultiTurnPrompt, new ChatMessage(Roles.Assistant, answer)]));
            int[] sequence = [.. pair.PromptIds, .. completion];
            Assert.That(sequence, Is.EqualTo(sft.InputIds[..sequence.Length]), "same tokens as SFT");
            Assert.That(tok.Decode(sft.InputIds[sequence.Length..]), Is.EqualTo("\n"), "only the untrained newline after <|im_end|> is left out");
            var trained = Enumerable.Range(0, sft.Length).Where(t => sft.Labels[t] != TokenizedExample.IgnoreIndex).ToArray();
            Assert.That(trained, Is.EqualTo(Enumerable.Range(pair.PromptIds.Length, completion.Length)), "the completion is exactly SFT's trained span");
            Assert.That(tok.Decode(completion), Is.EqualTo(answer + "<|im_end|>"));
        }

        // Written out by hand: the prompt is the template's text up to the answer, i.e. the generation prompt with
        // thinking off (the empty think block that the template puts before the final answer).
        const string expected = "<|im_start|>system\nsys<|im_end|>\n<|im_start|>user\nq1<|im_end|>\n<|im_start|>assistant\na1<|im_end|>\n"
            + "<|im_start|>user\nまだ？<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n";
        Assert.That(tok.Decode(pair.PromptIds), Is.EqualTo(expected));
        Assert.That(expected, Is.EqualTo(ChatTemplate.Render(MultiTurnPrompt, new ChatRenderOptions(AddGenerationPrompt: true, EnableThinking: false)).Text));
        Assert.That(pair.PromptIds, Is.EqualTo(tok.Encode(expected)), "the prompt alone tokenizes the same as at generation time");
        Assert.That((pair.Id, pair.Category, pair.Source, pair.Line, pair.PromptTokensDropped), Is.EqualTo(("p1", "safety_refusal", "prefs.jsonl", 4, 0)));
    }

    [Test]
    public void TrainThinkBlock_MovesTheThinkBlockIntoTheCompletion()
    {
        var pair = PreferenceTokenizer.Tokenize([Pair([new(Roles.User, "q")], "yes", "no")], new SftEncoder(Bytes, new MaskOptions(TrainThinkBlock: true)), 4096).Single();
        Assert.That(Bytes.Decode(pair.PromptIds), Is.EqualTo("<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n"));
        Assert.That(Bytes.Decode(pair.ChosenIds), Is.EqualTo("<think>\n\n</think>\n\nyes<|im_end|>"));
    }

    // Byte tokenizer, hand-counted: the prompt "<|im_start|>" "user\n" "abcdefghij" "<|im_end|>" "\n" "<|im_start|>"
    // "assistant\n" "<think>" "\n\n" "</think>" "\n\n" is 1+5+10+1+1+1+10+1+2+1+2 = 35 tokens; chosen "xyz<|im_end|>" is
    // 4, rejected "pqrstu<|im_end|>" is 7. The prompt keeps max_length - 7 tokens from its END.
    [TestCase(42, 35, "")]                                    // 35 + 7 = 42: fits whole
    [TestCase(41, 34, "")]                                    // one token over: the leading <|im_start|> goes
    [TestCase(12, 5, "\n\n</think>\n\n")]                     // the last five prompt tokens
    [TestCase(8, 1, "\n")]                                    // the smallest fit: one prompt token
    public void LongPair_CutsThePromptFromTheLeft_ForTheLongerAnswer(int maxLength, int promptKept, string keptTextIfShort)
    {
        var pairs = PreferenceTokenizer.Tokenize([Pair([new(Roles.User, "abcdefghij")], "xyz", "pqrstu")], new SftEncoder(Bytes), maxLength);
        var pair = pairs.Single();
        var full = Bytes.Encode(ChatTemplate.Render([new ChatMessage(Roles.User, "abcdefghij")], new ChatRenderOptions(AddGenerationPrompt: true, EnableThinking: false)).Text);
        Assert.That(full, Has.Length.EqualTo(35));
        Assert.That(pair.ChosenIds, Has.Length.EqualTo(4));
        Assert.That(pair.RejectedIds, Has.Length.EqualTo(7));
        Assert.That(pair.PromptIds, Is.EqualTo(full[^promptKept..]), "the prompt's last tokens are kept");
        Assert.That(pair.PromptTokensDropped, Is.EqualTo(35 - promptKept));
        Assert.That(pair.RejectedSequence(), Has.Length.EqualTo(Math.Min(maxLength, 42)));
        Assert.That(pair.MaxSequenceLength, Is.LessThanOrEqualTo(maxLength));
        if (keptTextIfShort.Length > 0) Assert.That(Bytes.Decode(pair.PromptIds), Is.EqualTo(keptTextIfShort));
        Assert.That(pairs.Report.Truncated, Is.EqualTo(promptKept < 35 ? 1 : 0));
    }

    [Test]
    public void CompletionLongerThanMaxLengthMinusOne_IsABadRow_WithItsOneLineMessage()
    {
        var ex = Pair([new(Roles.User, "abcdefghij")], "xyz", "pqrstu");
        var e = Assert.Throws<DatasetRowException>(() => PreferenceTokenizer.Tokenize([ex], new SftEncoder(Bytes), 7))!;
        Assert.That(e.Message, Is.EqualTo("prefs.jsonl line 4: rejected: completion is 7 tokens; max_length 7 leaves room for at most 6 (one prompt token is always kept)"));

        var longChosen = ex with { Chosen = [new ChatMessage(Roles.Assistant, "0123456789")] };
        var skipped = PreferenceTokenizer.Tokenize([ex, longChosen, ex], new SftEncoder(Bytes), 8, BadRowPolicy.Skip);
        Assert.That(skipped, Has.Count.EqualTo(2));
        Assert.That(skipped.Report.Dropped, Is.EqualTo(1));
        Assert.That(skipped.Report.Errors.Single().ToString(),
            Is.EqualTo("prefs.jsonl line 4: chosen: completion is 11 tokens; max_length 8 leaves room for at most 7 (one prompt token is always kept)"));
        Assert.That(skipped.Report.KeptPerCategory, Is.EqualTo(new SortedDictionary<string, int> { ["safety_refusal"] = 2 }));
    }

    [Test]
    public void ReasoningInOneAnswer_GivesDifferentPrompts_IsABadRow()
    {
        var ex = Pair([new(Roles.User, "q")], "yes", "no") with { Chosen = [new ChatMessage(Roles.Assistant, "yes", ReasoningContent: "hmm")] };
        var e = Assert.Throws<DatasetRowException>(() => PreferenceTokenizer.Tokenize([ex], new SftEncoder(Bytes), 100))!;
        Assert.That(e.Message, Is.EqualTo("prefs.jsonl line 4: rejected: its prompt tokens differ from chosen's (a reasoning_content or think block in an answer is prompt context unless train_think_block is on)"));
        // With the think block trained, the reasoning belongs to the completion and the pair is fine.
        var pair = PreferenceTokenizer.Tokenize([ex], new SftEncoder(Bytes, new MaskOptions(TrainThinkBlock: true)), 100).Single();
        Assert.That(Bytes.Decode(pair.ChosenIds), Is.EqualTo("<think>\nhmm\n</think>\n\nyes<|im_end|>"));
    }
}
