using System.Diagnostics;

namespace Qwen35.Data;

/// <summary>Tokenizer throughput: encode a corpus repeatedly for a minimum time and report tokens per second.</summary>
public static class TokenizerBenchmark
{
    public sealed record Result(long Tokens, long Characters, double Seconds, int Passes)
    {
        public double TokensPerSecond => Tokens / Seconds;
        public override string ToString() =>
            $"{TokensPerSecond:N0} tokens/s ({Tokens:N0} tokens, {Characters:N0} chars, {Passes} passes in {Seconds:F2} s)";
    }

    /// <summary>A mixed Japanese/English/code text used when no corpus is given.</summary>
    public static readonly string DefaultCorpus = string.Join("\n\n", Enumerable.Repeat(
        "本ガイドラインは、日本語で対話するAIアシスタントが安全かつ有用な応答を行うための基本方針をまとめたものです。" +
        "危険な依頼には丁寧にお断りし、可能であれば安全な代替案を示してください。\n" +
        "The quick brown fox jumps over the lazy dog; it's 2024-12-31 23:59:59 and the price is ¥1,234,567.\n" +
        "```python\ndef total(xs: list[int]) -> int:\n    return sum(x for x in xs if x > 0)\n```\n" +
        "<|im_start|>user\nこんにちは！😊 今日の天気は？<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n晴れです。<|im_end|>", 40));

    /// <summary>Encodes every text once to warm up, then repeats passes until <paramref name="minSeconds"/> have elapsed.</summary>
    public static Result Run(ITokenizer tokenizer, IReadOnlyList<string> texts, double minSeconds = 2.0)
    {
        if (texts.Count == 0) throw new ArgumentException("the benchmark needs at least one text", nameof(texts));
        foreach (var t in texts) tokenizer.Encode(t); // warm-up (JIT, BPE cache)
        long tokens = 0, chars = 0;
        var passes = 0;
        var sw = Stopwatch.StartNew();
        do
        {
            foreach (var t in texts)
            {
                tokens += tokenizer.Encode(t).Length;
                chars += t.Length;
            }
            passes++;
        } while (sw.Elapsed.TotalSeconds < minSeconds);
        return new Result(tokens, chars, sw.Elapsed.TotalSeconds, passes);
    }
}
