using static TorchSharp.torch;

namespace Qwen35.Models.Generation;

/// <summary>
/// A causal language model as <see cref="TokenGenerator"/> sees it: one decoding session over a fixed batch whose
/// cached state (KV, conv and recurrent states) grows with every call. Tests use small fakes;
/// the Qwen3.5 model plugs in through an adapter over its forward and cache.
/// </summary>
public interface IStepModel
{
    /// <summary>Where the model runs: the generator builds its input tensors there.</summary>
    Device Device { get; }

    /// <summary>
    /// Runs <paramref name="inputIds"/> [B,T] on top of everything already cached and caches them too.
    /// <paramref name="attentionMask"/> [B,T] (int64, 1 real, 0 padding) covers only the new tokens; the session
    /// remembers earlier columns. <paramref name="positionIds"/> [B,T] are the RoPE positions of the new tokens.
    /// Returns the fp32 logits of the last new position of each row, [B,V].
    /// </summary>
    Tensor Step(Tensor inputIds, Tensor attentionMask, Tensor positionIds);
}
