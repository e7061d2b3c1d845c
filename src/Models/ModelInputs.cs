using Qwen35.Models.Generation;
using static TorchSharp.torch;

namespace Qwen35.Models;

/// <summary>
/// Inputs of one forward. All tensors are int64 [B, T] on the model's device.
/// </summary>
/// <param name="InputIds">token ids.</param>
/// <param name="AttentionMask">1 = real token, 0 = padding (right padding for training, left for generation). With a
/// cache it may cover all tokens [B, past+T] or only the new ones [B, T] (the cache remembers earlier columns).</param>
/// <param name="PositionIds">RoPE positions; default arange(past, past+T), cumsum(mask)−1 with a mask, and restarting
/// at 0 per document with SequenceIds.</param>
/// <param name="SequenceIds">packed rows: document index of each token within its row (0,0,0,1,1,2,...). Attention is
/// block-diagonal causal and the DeltaNet conv context and recurrent state reset at every document start. Not
/// allowed together with a cache.</param>
/// <param name="Cache">decoding cache (read and appended to), or null.</param>
/// <param name="DocumentOffsets">optional host-side copy of the packed layout, per row the start index of each
/// document (ascending, first 0), consistent with SequenceIds, with any padding only at the END of a row (it then
/// belongs to the last document, as the packer does). When given (and a row has at most
/// <see cref="Modules.Qwen35Attention.MaxDocumentsPerRowForSplit"/> documents) the full-attention layers run each
/// document's attention separately with the causal flag instead of one [T, T] block-diagonal mask, which lets CUDA
/// use the flash kernel. Outputs for real tokens are the same either way.</param>
public sealed record ModelInputs(
    Tensor InputIds,
    Tensor? AttentionMask = null,
    Tensor? PositionIds = null,
    Tensor? SequenceIds = null,
    ModelCache? Cache = null,
    IReadOnlyList<int[]>? DocumentOffsets = null);
