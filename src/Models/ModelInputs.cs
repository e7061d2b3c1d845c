using Qwen35.Models.Generation;
using static TorchSharp.torch;

namespace Qwen35.Models;

/// <summary>
/// Inputs of one forward. Tensors are int64 [B, T] on the model's device.
/// </summary>
/// <param name="InputIds">token ids.</param>
/// <param name="AttentionMask">1 = real token, 0 = padding, for inputs whose padding is not described by
/// <paramref name="Documents"/> (generation's left padding). With a cache it may cover all tokens [B, past+T] or only
/// the new ones [B, T] (the cache remembers earlier columns). RoPE positions are cumsum(mask)−1, else
/// arange(past, past+T).</param>
/// <param name="PositionIds">explicit RoPE positions (generation passes them), overriding the defaults.</param>
/// <param name="Cache">decoding cache (read and appended to), or null.</param>
/// <param name="Documents">training batches: per row the document starts and the real length (right padding). The
/// model derives positions, attention, the DeltaNet layouts and the padding mask from it (see
/// <see cref="PackedDocuments"/>). Not allowed together with <paramref name="AttentionMask"/>,
/// <paramref name="PositionIds"/> or a cache.</param>
public sealed record ModelInputs(
    Tensor InputIds,
    Tensor? AttentionMask = null,
    Tensor? PositionIds = null,
    ModelCache? Cache = null,
    PackedDocuments? Documents = null);
