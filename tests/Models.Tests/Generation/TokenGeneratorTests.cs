using Qwen35.Models.Generation;
using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Models.Tests.Generation;

/// <summary>Generation loop mechanics on <see cref="FakeDeltaLm"/> (the Qwen3.5 golden tests are in
/// Qwen35GenerationTests).</summary>
public class TokenGeneratorTests
{
    static readonly int[][] Prompts = [[3, 7, 1], [5, 2, 9, 14, 8, 20, 11, 4, 6], [12, 0, 19, 4, 4]];

    static GenerationResult Run(IReadOnlyList<int[]> prompts, GenerationOptions options)
    {
        using var model = new FakeDeltaLm();
        return new TokenGenerator(model).Generate(prompts, options);
    }

    [Test]
    public void GreedyMatchesArgmaxOfFullForwards()
    {
        // The definition of greedy decoding, without any cache: re-run the whole sequence, take the argmax, append.
        var prompt = Prompts[1];
        var sequence = prompt.ToList();
        for (int i = 0; i < 8; i++)
        {
            using var scope = NewDisposeScope();
            using var fresh = new FakeDeltaLm();
            var ids = tensor(sequence.Select(x => (long)x).ToArray(), [1, sequence.Count]);
            var logits = fresh.Forward(ids, ones_like(ids), arange(sequence.Count, ScalarType.Int64).unsqueeze(0));
            sequence.Add((int)logits[0, -1].argmax().ToInt64());
        }
        var result = Run([prompt], new GenerationOptions { MaxNewTokens = 8 });
        Assert.That(result.NewTokens[0], Is.EqualTo(sequence.Skip(prompt.Length).ToArray()));
        Assert.That(result.FinishReasons[0], Is.EqualTo(FinishReason.MaxNewTokens));
    }

    [Test]
    public void BatchedLeftPaddedEqualsPerPrompt()
    {
        var options = new GenerationOptions { MaxNewTokens = 10, PadTokenId = 22 };
        var batched = Run(Prompts, options);
        for (int b = 0; b < Prompts.Length; b++)
            Assert.That(batched.NewTokens[b], Is.EqualTo(Run([Prompts[b]], options).NewTokens[0]), $"row {b}");
        Assert.That(batched.NewTokens.Select(t => string.Join(",", t)).Distinct().Count(), Is.EqualTo(3), "rows differ");
    }

    [Test]
    public void StopTokenEndsOnlyItsRow()
    {
        var free = Run(Prompts, new GenerationOptions { MaxNewTokens = 10 });
        int stopId = free.NewTokens[0][3];
        int firstHit = Array.IndexOf(free.NewTokens[0], stopId);
        var stopped = Run(Prompts, new GenerationOptions { MaxNewTokens = 10, StopTokenIds = [stopId] });
        Assert.That(stopped.NewTokens[0], Is.EqualTo(free.NewTokens[0].Take(firstHit + 1).ToArray()));
        Assert.That(stopped.FinishReasons[0], Is.EqualTo(FinishReason.StopToken));
        for (int b = 1; b < Prompts.Length; b++)
        {
            int hit = Array.IndexOf(free.NewTokens[b], stopId);
            var expected = hit < 0 ? free.NewTokens[b] : free.NewTokens[b].Take(hit + 1).ToArray();
            Assert.That(stopped.NewTokens[b], Is.EqualTo(expected), $"row {b}");
            Assert.That(stopped.FinishReasons[b], Is.EqualTo(hit < 0 ? FinishReason.MaxNewTokens : FinishReason.StopToken));
        }
    }

    [Test]
    public void SeededSamplingRepeatsAndSeedMatters()
    {
        var options = new GenerationOptions { MaxNewTokens = 12, DoSample = true, Temperature = 1.5, Seed = 1234 };
        var a = Run(Prompts, options);
        var b = Run(Prompts, options);
        var c = Run(Prompts, options with { Seed = 4321 });
        for (int r = 0; r < Prompts.Length; r++) Assert.That(a.NewTokens[r], Is.EqualTo(b.NewTokens[r]));
        Assert.That(Enumerable.Range(0, Prompts.Length).Any(r => !a.NewTokens[r].SequenceEqual(c.NewTokens[r])), Is.True);
        var greedy = Run(Prompts, new GenerationOptions { MaxNewTokens = 12 });
        Assert.That(Enumerable.Range(0, Prompts.Length).Any(r => !a.NewTokens[r].SequenceEqual(greedy.NewTokens[r])), Is.True,
            "sampling at temperature 1.5 should leave the greedy path somewhere");
    }

    [TestCase(1, 1.0, 1.0), TestCase(0, 1.0, 1e-4), TestCase(0, 1e-3, 1.0)]
    public void DegenerateSamplingEqualsGreedy(int topK, double temperature, double topP)
    {
        var greedy = Run(Prompts, new GenerationOptions { MaxNewTokens = 10 });
        var sampled = Run(Prompts, new GenerationOptions
        {
            MaxNewTokens = 10, DoSample = true, TopK = topK, Temperature = temperature, TopP = topP, Seed = 5,
        });
        for (int r = 0; r < Prompts.Length; r++) Assert.That(sampled.NewTokens[r], Is.EqualTo(greedy.NewTokens[r]), $"row {r}");
    }

    [Test]
    public void ContinuationFromCacheEqualsGeneratingFromScratch()
    {
        using var model = new FakeDeltaLm();
        var generator = new TokenGenerator(model);
        var options = new GenerationOptions { MaxNewTokens = 6 };
        var first = generator.Generate([Prompts[1]], options);
        int[] userTurn = [13, 2, 2, 17, 5];
        // The last generated token was never run: it opens the continuation.
        var second = generator.Generate([[first.NewTokens[0][^1], .. userTurn]], options);
        Assert.That(generator.CachedTokens[0], Is.EqualTo(Prompts[1].Length + 6 + userTurn.Length + 5));

        var scratch = Run([[.. Prompts[1], .. first.NewTokens[0], .. userTurn]], options);
        Assert.That(second.NewTokens[0], Is.EqualTo(scratch.NewTokens[0]));
    }

    [Test]
    public void BatchedContinuationEqualsPerRowContinuation()
    {
        var options = new GenerationOptions { MaxNewTokens = 4 };
        int[][] more = [[1, 2, 3], [4, 5, 6], [7, 8, 9]];
        using var model = new FakeDeltaLm();
        var generator = new TokenGenerator(model);
        generator.Generate(Prompts, options);
        var batched = generator.Generate(more, options);
        for (int b = 0; b < Prompts.Length; b++)
        {
            using var single = new FakeDeltaLm();
            var g = new TokenGenerator(single);
            g.Generate([Prompts[b]], options);
            Assert.That(batched.NewTokens[b], Is.EqualTo(g.Generate([more[b]], options).NewTokens[0]), $"row {b}");
        }
    }

    [Test]
    public void RejectsContinuationsThatCannotBeExact()
    {
        using var model = new FakeDeltaLm();
        var generator = new TokenGenerator(model);
        generator.Generate(Prompts, new GenerationOptions { MaxNewTokens = 1 });
        Assert.Throws<ArgumentException>(() => generator.Generate([[1], [2]], new GenerationOptions()));
        var ex = Assert.Throws<ArgumentException>(() => generator.Generate([[1], [2, 3], [4]], new GenerationOptions()));
        Assert.That(ex!.Message, Does.Contain("equal lengths"));
        Assert.Throws<ArgumentException>(() => new TokenGenerator(model).Generate([[]], new GenerationOptions()));
        Assert.Throws<ArgumentOutOfRangeException>(() => new GenerationOptions { DoSample = true, Temperature = 0 }.Validate());
    }
}

public class TokenSamplerTests
{
    [Test]
    public void TopKAndTopPRestrictTheSupport()
    {
        // Row probabilities 0.5, 0.3, 0.15, 0.05: top-p 0.75 keeps {0, 1}; top-k 3 keeps {0, 1, 2}.
        using var scope = NewDisposeScope();
        var logits = tensor(new[] { 0.5f, 0.3f, 0.15f, 0.05f }).log().unsqueeze(0).expand(400, 4).contiguous();
        using var topP = new TokenSampler(new GenerationOptions { DoSample = true, TopP = 0.75, Seed = 1 });
        var p = topP.Pick(logits).data<long>().ToArray();
        Assert.That(p.Distinct().OrderBy(x => x), Is.EqualTo(new long[] { 0, 1 }));
        // Renormalised 0.5 : 0.3 → token 0 with probability 0.625 (400 draws: 5 σ ≈ 0.12).
        Assert.That(p.Count(x => x == 0) / 400.0, Is.EqualTo(0.625).Within(0.12));

        using var topK = new TokenSampler(new GenerationOptions { DoSample = true, TopK = 3, Seed = 2 });
        var k = topK.Pick(logits).data<long>().ToArray();
        Assert.That(k.Distinct().OrderBy(x => x), Is.EqualTo(new long[] { 0, 1, 2 }));
    }

    [Test]
    public void TemperatureSharpensTheDistribution()
    {
        // At temperature 0.5 the probabilities become ∝ p²: 0.25 : 0.09 : 0.0225 : 0.0025 → token 0 ≈ 0.6868.
        using var scope = NewDisposeScope();
        var logits = tensor(new[] { 0.5f, 0.3f, 0.15f, 0.05f }).log().unsqueeze(0).expand(2000, 4).contiguous();
        using var sampler = new TokenSampler(new GenerationOptions { DoSample = true, Temperature = 0.5, Seed = 3 });
        var picks = sampler.Pick(logits).data<long>().ToArray();
        Assert.That(picks.Count(x => x == 0) / 2000.0, Is.EqualTo(0.6868).Within(0.05));
    }
}
