using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Models.Generation;

/// <summary>
/// Picks the next token of every row from last-position logits. Greedy is argmax. Sampling runs on the CPU with its
/// own seeded generator, so a seeded run gives the same tokens whatever device the model is on and whatever else
/// draws from torch's global generator.
/// </summary>
public sealed class TokenSampler : IDisposable
{
    readonly GenerationOptions options;
    readonly torch.Generator? generator;

    public TokenSampler(GenerationOptions options)
    {
        options.Validate();
        this.options = options;
        if (options.DoSample)
            generator = new torch.Generator((ulong)(options.Seed ?? Random.Shared.NextInt64()), CPU);
    }

    /// <summary>Next token ids, int64 [B] on the CPU, for logits [B,V].</summary>
    public Tensor Pick(Tensor logits)
    {
        using var scope = NewDisposeScope();
        // Greedy: argmax where the logits are and copy back only B ids (not B×V floats; 1 MB per row at Qwen's
        // 248K vocabulary). Upcasting bf16 to fp32 is exact and monotonic, so the argmax is the same.
        if (!options.DoSample) return logits.argmax(-1).to(CPU).MoveToOuterDisposeScope();
        var scores = logits.to(ScalarType.Float32).to(CPU);

        scores = scores / options.Temperature;
        long vocab = scores.shape[^1];
        if (options.TopK > 0 && options.TopK < vocab)
        {
            // Ties with the k-th score are kept, as in Hugging Face's TopKLogitsWarper.
            var kth = scores.topk(options.TopK, dim: -1).values.narrow(-1, options.TopK - 1, 1);
            scores = scores.masked_fill(scores.lt(kth), double.NegativeInfinity);
        }
        if (options.TopP < 1)
        {
            // Drop a token when the tokens ranked above it already hold ≥ p of the mass: the most likely token
            // always survives, and the kept set is the smallest whose mass reaches p.
            var (sorted, order) = scores.sort(-1, descending: true);
            var probs = sorted.softmax(-1);
            var before = probs.cumsum(-1) - probs;
            var dropSorted = before.ge(options.TopP);
            var drop = zeros_like(dropSorted).scatter(-1, order, dropSorted);
            scores = scores.masked_fill(drop, double.NegativeInfinity);
        }
        return multinomial(scores.softmax(-1), 1, generator: generator).squeeze(-1).MoveToOuterDisposeScope();
    }

    public void Dispose() => generator?.Dispose();
}
