using Qwen35.Models.Config;
using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Models.Generation;

/// <summary>
/// Decoding state of a <see cref="Qwen35ForCausalLM"/> (docs/model.md and docs/deltanet.md, "Caches"): per
/// full-attention layer the K/V seen so far [B, Hkv, S, D] (K after k_norm and RoPE); per Gated-DeltaNet layer the last
/// K raw (pre-conv) channels [B, C, K] and the fp32 recurrent state [B, Hv, dk, dv]. Also keeps the 2-D attention mask
/// of all tokens seen so that callers may pass only the new tokens' mask. Tensors held here live outside every dispose
/// scope; the cache owns them and frees them on replacement and in <see cref="Dispose"/>.
/// </summary>
public sealed class ModelCache : IDisposable
{
    readonly Tensor?[] keys, values, convStates, recurrentStates;
    Tensor? attentionMask;

    public ModelCache(Qwen35TextConfig config)
    {
        Config = config;
        var n = config.NumHiddenLayers;
        keys = new Tensor?[n];
        values = new Tensor?[n];
        convStates = new Tensor?[n];
        recurrentStates = new Tensor?[n];
    }

    public Qwen35TextConfig Config { get; }

    /// <summary>Tokens already processed (the RoPE offset and the key length of the next step).</summary>
    public long SeenTokens { get; private set; }

    /// <summary>int64 [B, SeenTokens] mask of every token seen (1 real, 0 padding), or null if none was ever given.</summary>
    public Tensor? AttentionMask => attentionMask;

    public Tensor? Keys(int layer) => keys[layer];
    public Tensor? Values(int layer) => values[layer];
    public Tensor? ConvState(int layer) => convStates[layer];
    public Tensor? RecurrentState(int layer) => recurrentStates[layer];

    /// <summary>True once a linear layer has stored its states (HF's has_previous_state).</summary>
    public bool HasLinearState(int layer) => recurrentStates[layer] is not null;

    /// <summary>Appends this step's K/V to the layer's cache and returns the full K/V (owned by the cache).</summary>
    public (Tensor Keys, Tensor Values) AppendKeyValues(int layer, Tensor k, Tensor v)
    {
        var newK = keys[layer] is null ? k.alias() : cat([keys[layer]!, k], 2);
        var newV = values[layer] is null ? v.alias() : cat([values[layer]!, v], 2);
        Replace(ref keys[layer], newK);
        Replace(ref values[layer], newV);
        return (keys[layer]!, values[layer]!);
    }

    public void SetLinearStates(int layer, Tensor convState, Tensor recurrentState)
    {
        Replace(ref convStates[layer], convState.alias());
        Replace(ref recurrentStates[layer], recurrentState.alias());
    }

    /// <summary>Called by the model at the end of a forward: advances the token count and stores the full mask.</summary>
    public void Advance(long newTokens, Tensor? fullAttentionMask)
    {
        SeenTokens += newTokens;
        if (fullAttentionMask is not null) Replace(ref attentionMask, fullAttentionMask.alias());
    }

    static void Replace(ref Tensor? slot, Tensor value)
    {
        value.DetachFromDisposeScope();
        var old = slot;
        slot = value;
        if (old is not null && !ReferenceEquals(old, value)) old.Dispose();
    }

    public void Dispose()
    {
        foreach (var arr in new[] { keys, values, convStates, recurrentStates })
            for (var i = 0; i < arr.Length; i++)
            {
                arr[i]?.Dispose();
                arr[i] = null;
            }
        attentionMask?.Dispose();
        attentionMask = null;
    }
}
