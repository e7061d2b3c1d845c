using Qwen35.Data;

namespace Qwen35.Export.LlamaCpp;

/// <summary>
/// The token sequences `--check` runs: three fixed texts through the session's tokenizer when there is one (a chat
/// turn in Qwen's template, English prose, Japanese prose with digits: the kinds of text a tuned model sees), else
/// three runs of seeded random ids. Either way the same ids every time, so two checks of one file print the same table.
/// </summary>
public static class CheckSequences
{
    /// <summary>Tokens per sequence at most (the runner's context holds <see cref="LlamaCppRunner.ContextSize"/>).</summary>
    public const int MaxTokens = 48;

    static readonly string[] Texts =
    [
        "<|im_start|>user\nHow do I store passwords safely in a web application?<|im_end|>\n<|im_start|>assistant\n" +
        "Never store them in plain text. Hash each password with a slow, salted algorithm such as Argon2 or bcrypt.<|im_end|>\n",
        "The river was wide and slow, and the boats that moved along it carried grain, timber and news from the towns " +
        "upstream to the harbour, where the merchants waited for them every morning.",
        "東京の天気は晴れで、最高気温は23度の予想です。午後からは風が強くなるため、外出の際は注意してください。2026年12月7日。",
    ];

    /// <summary>The sequences for a model of <paramref name="vocabSize"/> tokens: tokenized texts (ids at or above
    /// the vocabulary dropped) or, with no tokenizer, random ids from a fixed seed.</summary>
    public static IReadOnlyList<long[]> For(ITokenizer? tokenizer, int vocabSize)
    {
        if (tokenizer is not null)
            return Texts.Select(t => tokenizer.Encode(t).Where(id => id < vocabSize).Take(MaxTokens).Select(id => (long)id).ToArray())
                .Where(ids => ids.Length >= 2).ToList() is { Count: > 0 } encoded ? encoded : Random(vocabSize);
        return Random(vocabSize);
    }

    static IReadOnlyList<long[]> Random(int vocabSize)
    {
        var rng = new System.Random(20261207);
        return Enumerable.Range(0, 3).Select(_ => Enumerable.Range(0, 32).Select(_ => (long)rng.Next(vocabSize)).ToArray()).ToList();
    }
}
