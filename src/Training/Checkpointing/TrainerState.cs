using System.Text.Json;
using System.Text.Json.Serialization;

namespace Qwen35.Training.Checkpointing;

/// <summary>
/// Where a run stands after an optimizer step: everything besides tensors that a resume needs to continue exactly
/// (trainer_state.json in each checkpoint).
/// </summary>
public sealed record TrainerState
{
    /// <summary>Optimizer steps completed (the next step to run has this index).</summary>
    [JsonPropertyName("step")] public int Step { get; init; }
    /// <summary>Data position: the epoch being read ...</summary>
    [JsonPropertyName("epoch")] public int Epoch { get; init; }
    /// <summary>... and how many of its micro-batches have been consumed.</summary>
    [JsonPropertyName("micro_batch_in_epoch")] public int MicroBatchInEpoch { get; init; }
    [JsonPropertyName("trained_tokens")] public long TrainedTokens { get; init; }
    [JsonPropertyName("skipped_nonfinite")] public int SkippedNonfinite { get; init; }
    [JsonPropertyName("elapsed_s")] public double ElapsedSeconds { get; init; }
    [JsonPropertyName("seed")] public long Seed { get; init; }
    /// <summary>How random numbers are drawn: reseeded per micro-batch from (seed, step, index), so (seed, step) is the
    /// complete RNG state and nothing else needs saving.</summary>
    [JsonPropertyName("rng")] public string Rng { get; init; } = "reseed-per-micro-batch(seed, step, micro_batch)";
    /// <summary>Hash of the trajectory-relevant recipe (RecipeLoader.Hash); a mismatch on resume is warned about.</summary>
    [JsonPropertyName("recipe_hash")] public string RecipeHash { get; init; } = "";
    [JsonPropertyName("last_loss")] public double? LastLoss { get; init; }

    static readonly JsonSerializerOptions Json = new() { WriteIndented = true };
    public string ToJson() => JsonSerializer.Serialize(this, Json);

    public static TrainerState Load(string path)
    {
        try
        {
            return JsonSerializer.Deserialize<TrainerState>(File.ReadAllText(path)) ?? throw new UserInputException($"{path}: empty trainer state");
        }
        catch (JsonException e)
        {
            throw new UserInputException($"{path}: not a trainer_state.json ({e.Message})", e);
        }
    }
}
