using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Qwen35.Data.Preference;
using Qwen35.Lora;
using Qwen35.Models;
using Serilog;

namespace Qwen35.Training.Dpo;

/// <summary>
/// The reference model's summed completion log-probs of every pair, computed once before training in one no-grad
/// pass of the policy's own model (no second copy): with every adapter switched off when the reference is the base
/// model, or with the adapter as loaded when it is a reference adapter (training starts from a copy of it, so before
/// the first step the policy IS the reference). Cached in output_dir/reference_logps.json with a fingerprint of what
/// produced them (model, reference, precision, device kind) and a key per pair (its token ids), so a resumed run
/// reuses them and a changed model, reference or data set is noticed and recomputed.
/// </summary>
public static class ReferenceLogps
{
    public const string FileName = "reference_logps.json";

    sealed record CacheFile(
        [property: JsonPropertyName("fingerprint")] string Fingerprint,
        [property: JsonPropertyName("pairs")] List<CachedPair> Pairs);

    sealed record CachedPair(
        [property: JsonPropertyName("key")] string Key,
        [property: JsonPropertyName("id")] string? Id,
        [property: JsonPropertyName("chosen")] double Chosen,
        [property: JsonPropertyName("rejected")] double Rejected);

    /// <summary>One no-grad pass over every pair of <paramref name="data"/> (train and eval), adapters off when
    /// <paramref name="baseModel"/>. Returns per pair (chosen, rejected) summed completion log-probs.</summary>
    public static (double[] Chosen, double[] Rejected) Compute(Qwen35ForCausalLM model, DpoData data, bool baseModel, int chunkRows = Loop.ChunkedCrossEntropy.AutoChunkRows)
    {
        var chosen = new double[data.All.Count];
        var rejected = new double[data.All.Count];
        using var off = baseModel ? LoraInjector.Disable(model) : null;
        foreach (var batch in data.AllBatches())
        {
            var (c, r) = DpoObjective.SequenceLogps(model, batch, chunkRows);
            for (var k = 0; k < c.Length; k++)
            {
                chosen[batch.Pairs!.PairIndex[k]] = c[k];
                rejected[batch.Pairs.PairIndex[k]] = r[k];
            }
        }
        return (chosen, rejected);
    }

    /// <summary>A pair's cache key: a hash of its prompt, chosen and rejected token ids.</summary>
    public static string Key(TokenizedPair p)
    {
        var text = $"{string.Join(",", p.PromptIds)}|{string.Join(",", p.ChosenIds)}|{string.Join(",", p.RejectedIds)}";
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)))[..16];
    }

    /// <summary>What the reference log-probs depend on besides the pairs: the model (a folder, or builtin:tiny and the
    /// seed of its weights), the reference (base, or the adapter's weights file hashed), precision and device kind.</summary>
    public static string Fingerprint(string model, long seed, string? referenceAdapter, string precision, string deviceType)
    {
        var reference = referenceAdapter is null ? "base"
            : $"adapter:{Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(Path.Combine(referenceAdapter, PeftAdapter.WeightsFileName))))}";
        var modelId = model.StartsWith("builtin:", StringComparison.Ordinal) ? $"{model}@seed{seed}" : Path.GetFullPath(model);
        return $"model={modelId};reference={reference};precision={precision};device={deviceType}";
    }

    /// <summary>Writes the cache (atomically).</summary>
    public static void Save(string path, string fingerprint, IReadOnlyList<TokenizedPair> pairs, double[] chosen, double[] rejected)
    {
        var file = new CacheFile(fingerprint, pairs.Select((p, i) => new CachedPair(Key(p), p.Id, chosen[i], rejected[i])).ToList());
        AtomicFile.WriteAllText(path, JsonSerializer.Serialize(file, new JsonSerializerOptions { WriteIndented = false }));
    }

    /// <summary>The cached log-probs when the file exists and was made by the same fingerprint for the same pairs in
    /// the same order; otherwise null, with <paramref name="why"/> saying what differs (null: no file).</summary>
    public static (double[] Chosen, double[] Rejected)? TryLoad(string path, string fingerprint, IReadOnlyList<TokenizedPair> pairs, out string? why)
    {
        why = null;
        if (!File.Exists(path)) return null;
        CacheFile? file;
        try
        {
            file = JsonSerializer.Deserialize<CacheFile>(File.ReadAllText(path));
        }
        catch (JsonException e)
        {
            why = $"{path} is not a reference cache ({e.Message})";
            return null;
        }
        if (file is null || file.Pairs is null)
        {
            why = $"{path} is empty";
            return null;
        }
        if (file.Fingerprint != fingerprint)
        {
            why = $"{path} was computed for {file.Fingerprint}, this run is {fingerprint}";
            return null;
        }
        if (file.Pairs.Count != pairs.Count)
        {
            why = $"{path} holds {file.Pairs.Count} pairs, the data has {pairs.Count}";
            return null;
        }
        for (var i = 0; i < pairs.Count; i++)
            if (file.Pairs[i].Key != Key(pairs[i]))
            {
                why = $"{path}: pair {i} ({pairs[i].Location}) differs from the cached one (the data or its tokenization changed)";
                return null;
            }
        return (file.Pairs.Select(p => p.Chosen).ToArray(), file.Pairs.Select(p => p.Rejected).ToArray());
    }
}
