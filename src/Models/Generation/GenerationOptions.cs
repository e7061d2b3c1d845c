namespace Qwen35.Models.Generation;

/// <summary>
/// How <see cref="TokenGenerator"/> picks tokens. Greedy (argmax) unless <see cref="DoSample"/>; sampling applies
/// temperature, then top-k, then top-p (nucleus) to the fp32 logits and draws from the softmax with a generator
/// seeded by <see cref="Seed"/> (so a seeded run repeats exactly).
/// </summary>
public sealed record GenerationOptions
{
    /// <summary>Upper bound on generated tokens per row (the stop token, when produced, counts as one).</summary>
    public int MaxNewTokens { get; init; } = 64;
    public bool DoSample { get; init; }
    /// <summary>Logits are divided by this before top-k/top-p; must be &gt; 0 when sampling.</summary>
    public double Temperature { get; init; } = 1.0;
    /// <summary>Keep only the k most likely tokens; 0 disables.</summary>
    public int TopK { get; init; }
    /// <summary>Keep the smallest set of most likely tokens whose probability mass reaches p; 1 disables.</summary>
    public double TopP { get; init; } = 1.0;
    /// <summary>Seed of the sampling generator; null draws a random seed.</summary>
    public long? Seed { get; init; }
    /// <summary>A row stops after producing any of these (the stop token is included in its output).</summary>
    public IReadOnlyList<int> StopTokenIds { get; init; } = [];
    /// <summary>Id fed for left padding and for rows that already stopped; always masked out, so any valid id works.</summary>
    public int PadTokenId { get; init; }

    public void Validate()
    {
        if (MaxNewTokens < 0) throw new ArgumentOutOfRangeException(nameof(MaxNewTokens), MaxNewTokens, "max_new_tokens must be ≥ 0");
        if (DoSample && !(Temperature > 0)) throw new ArgumentOutOfRangeException(nameof(Temperature), Temperature, "temperature must be > 0 when sampling");
        if (TopK < 0) throw new ArgumentOutOfRangeException(nameof(TopK), TopK, "top_k must be ≥ 0 (0 disables it)");
        if (!(TopP > 0 && TopP <= 1)) throw new ArgumentOutOfRangeException(nameof(TopP), TopP, "top_p must be in (0, 1]");
    }
}

public enum FinishReason
{
    /// <summary>The row produced one of the stop tokens.</summary>
    StopToken,
    /// <summary>The row reached <see cref="GenerationOptions.MaxNewTokens"/>.</summary>
    MaxNewTokens,
}

/// <summary>Generated ids per row (prompt excluded, stop token included) and why each row ended.</summary>
public sealed record GenerationResult(IReadOnlyList<int[]> NewTokens, IReadOnlyList<FinishReason> FinishReasons);
