namespace Qwen35.Models;

/// <summary>What <see cref="Qwen35ForCausalLM.FromPretrained"/> did with a checkpoint.</summary>
/// <param name="Source">the checkpoint file or index read.</param>
/// <param name="Layout">"wrapper" (model.language_model.*) or "flat" (model.layers.* text-only export).</param>
/// <param name="Loaded">tensors copied into parameters.</param>
/// <param name="Skipped">tensors skipped on purpose, by prefix (model.visual., mtp.).</param>
/// <param name="Tied">true when the LM head reuses embed_tokens.weight.</param>
/// <param name="DtypesSeen">checkpoint dtype → number of loaded tensors (e.g. BF16 758, F32 48).</param>
public sealed record LoadReport(
    string Source,
    string Layout,
    int Loaded,
    IReadOnlyDictionary<string, int> Skipped,
    bool Tied,
    IReadOnlyDictionary<string, int> DtypesSeen)
{
    public override string ToString() =>
        $"{Source}: loaded {Loaded} tensors ({Layout} layout; dtypes {string.Join(", ", DtypesSeen.Select(kv => $"{kv.Key} {kv.Value}"))}), " +
        $"skipped {(Skipped.Count == 0 ? "none" : string.Join(", ", Skipped.Select(kv => $"{kv.Key}* {kv.Value}")))}, " +
        $"{(Tied ? "lm_head tied to embed_tokens" : "separate lm_head")}";
}
