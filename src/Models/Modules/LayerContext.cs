using Qwen35.Models.Generation;
using static TorchSharp.torch;

namespace Qwen35.Models.Modules;

/// <summary>
/// What every decoder layer of one forward shares, prepared once by <see cref="Qwen35TextModel"/> so that no layer
/// builds masks or syncs with the host.
/// </summary>
/// <param name="Cos">RoPE cos table [B, 1, T, R] in the activation dtype.</param>
/// <param name="Sin">RoPE sin table [B, 1, T, R].</param>
/// <param name="AttentionMask">bool [B, 1, T, S] for SDPA (true = attend), or null when plain causal (or, for a
/// single-token step, attend-to-everything) attention is exact.</param>
/// <param name="IsCausal">With a null mask: use SDPA's causal flag (T &gt; 1, nothing cached).</param>
/// <param name="LinearInputMask">[B, T] in the activation dtype: 1 real, 0 padding; the GDN zeroes pad inputs (HF's
/// apply_mask_to_padding_states). Null when there is no padding to zero.</param>
/// <param name="Cache">decoding cache to read and update, or null.</param>
/// <param name="DocumentSpans">packed rows without a mask: per row, the (start, length) of each document; full
/// attention then runs per document with the causal flag (AttentionMask is null). Null otherwise.</param>
/// <param name="DeltaRuleLayout">packed rows: the chunk-aligned layout the DeltaNet layers run the chunked delta rule
/// in (every document starts on a chunk boundary, so each is computed exactly as when run alone). Null otherwise.</param>
/// <param name="ConvLayout">with DeltaRuleLayout: the documents spread apart by K−1 zeros, for the causal conv (one
/// conv1d computing each document exactly as alone). Null otherwise.</param>
public sealed record LayerContext(
    Tensor Cos,
    Tensor Sin,
    Tensor? AttentionMask,
    bool IsCausal,
    Tensor? LinearInputMask,
    ModelCache? Cache,
    IReadOnlyList<(int Start, int Length)[]>? DocumentSpans = null,
    ChunkAlignedLayout? DeltaRuleLayout = null,
    ChunkAlignedLayout? ConvLayout = null);
