using Qwen35.Models.Generation;
using Qwen35.Training.Verification;
using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Models.Tests.Generation;

/// <summary>Generation with the golden tiny Qwen3.5 model (tests/fixtures/qwen35-tiny-a, fp32 CPU).</summary>
public class Qwen35GenerationTests
{
    static int[] Prompt(int index, int length = int.MaxValue) =>
        GoldenData.Sequences[index].Take(length).Select(x => (int)x).ToArray();

    static GenerationResult Run(IReadOnlyList<int[]> prompts, GenerationOptions options)
    {
        using var session = new Qwen35StepModel(GoldenData.Model);
        return new TokenGenerator(session).Generate(prompts, options);
    }

    [Test]
    public void GreedyReproducesTheGoldenTokens()
    {
        // The reference's greedy run starts from sequence 0 (GoldenReference refuses any other prompt_index).
        var expected = GoldenData.Reference.GreedyTokens.Select(t => (int)t).ToArray();
        var result = Run([Prompt(0, GoldenData.Reference.PromptLength)], new GenerationOptions { MaxNewTokens = expected.Length });
        Assert.That(result.NewTokens[0], Is.EqualTo(expected));
    }

    [Test]
    public void PrefillThenContinueAndDecodeEqualsFullForward()
    {
        // 70 tokens: a 50-token prefill (one padded chunk), a 17-token continuation that crosses the 64-token
        // boundary (chunked path with cached recurrent and conv state, attention over cached keys), then 3
        // single-token steps (recurrent path). Every position's logits must equal one uncached forward.
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var model = GoldenData.Model;
        var ids = GoldenData.Ids(GoldenData.Sequences[1]);
        var full = model.Logits(model.Forward(new ModelInputs(ids)));

        using var cache = new ModelCache(model.Config);
        var pieces = new List<Tensor>();
        int at = 0;
        foreach (var n in new[] { 50, 17, 1, 1, 1 })
        {
            var piece = ids.narrow(1, at, n);
            pieces.Add(model.Logits(model.Forward(new ModelInputs(piece, Cache: cache))));
            at += n;
        }
        Assert.That(cache.SeenTokens, Is.EqualTo(70));
        Assert.That(Comparison.MaxAbsDiff(cat(pieces, 1), full), Is.LessThanOrEqualTo(GoldenBounds.Exact.Logits));
    }

    [Test]
    public void LeftPaddedBatchEqualsSinglePrompts()
    {
        int[][] prompts = [Prompt(0), Prompt(1, 12), Prompt(2, 25)];
        var options = new GenerationOptions { MaxNewTokens = 6, PadTokenId = 0 };

        // Logits level: the left-padded prefill gives every row the logits it gets alone.
        using (var scope = NewDisposeScope())
        using (var noGrad = no_grad())
        {
            using var batch = new Qwen35StepModel(GoldenData.Model);
            var width = prompts.Max(p => p.Length);
            var ids = zeros(3, width, ScalarType.Int64);
            var mask = zeros(3, width, ScalarType.Int64);
            for (int b = 0; b < 3; b++)
            {
                var pad = width - prompts[b].Length;
                ids[b].narrow(0, pad, prompts[b].Length).copy_(tensor(prompts[b].Select(x => (long)x).ToArray()));
                mask[b].narrow(0, pad, prompts[b].Length).fill_(1);
            }
            var positions = (mask.cumsum(1) - 1).clamp_min(0);
            var batched = batch.Step(ids, mask, positions);
            for (int b = 0; b < 3; b++)
            {
                using var single = new Qwen35StepModel(GoldenData.Model);
                var one = GoldenData.Ids(prompts[b].Select(x => (long)x).ToArray());
                var alone = single.Step(one, ones_like(one), arange(prompts[b].Length, ScalarType.Int64).unsqueeze(0));
                Assert.That(Comparison.MaxAbsDiff(batched[b], alone[0]), Is.LessThanOrEqualTo(GoldenBounds.Exact.Logits), $"row {b}");
            }
        }

        var together = Run(prompts, options);
        for (int b = 0; b < 3; b++)
            Assert.That(together.NewTokens[b], Is.EqualTo(Run([prompts[b]], options).NewTokens[0]), $"row {b}");
    }

    [Test]
    public void SeededSamplingRepeatsAndTopKOneIsGreedy()
    {
        int[][] prompts = [Prompt(0, 20), Prompt(2, 9)];
        var sampling = new GenerationOptions { MaxNewTokens = 8, DoSample = true, Temperature = 1.0, TopP = 0.9, Seed = 77 };
        var a = Run(prompts, sampling);
        var b = Run(prompts, sampling);
        Assert.That(a.NewTokens, Is.EqualTo(b.NewTokens));

        var greedy = Run(prompts, new GenerationOptions { MaxNewTokens = 8 });
        var topK1 = Run(prompts, sampling with { TopK = 1, TopP = 1.0 });
        Assert.That(topK1.NewTokens, Is.EqualTo(greedy.NewTokens));
        Assert.That(a.NewTokens, Is.Not.EqualTo(greedy.NewTokens), "random weights give flat logits: sampling should leave the greedy path");
    }

    [Test]
    public void ContinuationEqualsGeneratingFromScratch()
    {
        var options = new GenerationOptions { MaxNewTokens = 5 };
        using var session = new Qwen35StepModel(GoldenData.Model);
        var generator = new TokenGenerator(session);
        var first = generator.Generate([Prompt(0, 30)], options);
        int[] turn = Prompt(2, 8);
        var second = generator.Generate([[first.NewTokens[0][^1], .. turn]], options);
        Assert.That(session.Cache.SeenTokens, Is.EqualTo(30 + 5 + 8 + 4));

        var scratch = Run([[.. Prompt(0, 30), .. first.NewTokens[0], .. turn]], options);
        Assert.That(second.NewTokens[0], Is.EqualTo(scratch.NewTokens[0]));
    }

    [Test]
    public void StopsAtTheEosToken()
    {
        var free = Run([Prompt(0)], new GenerationOptions { MaxNewTokens = 12 });
        var stopId = free.NewTokens[0][4];
        var stopped = Run([Prompt(0)], new GenerationOptions { MaxNewTokens = 12, StopTokenIds = [stopId] });
        var hit = Array.IndexOf(free.NewTokens[0], stopId);
        Assert.That(stopped.NewTokens[0], Is.EqualTo(free.NewTokens[0].Take(hit + 1).ToArray()));
        Assert.That(stopped.FinishReasons[0], Is.EqualTo(FinishReason.StopToken));
    }

    [Test]
    public void GenerationLeavesNoLiveTensorsBehind()
    {
        // Tensors are native memory the GC cannot see: a session must free everything it made once disposed.
        _ = GoldenData.Model;                        // load outside the measurement
        Run([Prompt(0, 10)], new GenerationOptions { MaxNewTokens = 2 });   // warm-up (lazy statics)
        // Earlier tests' unreferenced tensors would otherwise be finalised during the measurement.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        var before = Tensor.TotalCount;
        Run([Prompt(0, 20), Prompt(1, 7)], new GenerationOptions { MaxNewTokens = 6, DoSample = true, TopK = 5, TopP = 0.9, Seed = 1 });
        Assert.That(Tensor.TotalCount, Is.EqualTo(before));
    }
}
