using Qwen35.Models.Config;
using Qwen35.Models.Generation;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Qwen35.Models.Modules;

/// <summary>
/// The text decoder (HF <c>Qwen3_5TextModel</c>): embed_tokens, layers, norm. Prepares masks, positions and RoPE
/// tables once per forward (<see cref="LayerContext"/>) and runs the layers.
/// </summary>
public sealed class Qwen35TextModel : nn.Module<ModelInputs, Tensor>
{
    public TokenEmbedding embed_tokens;
    public ModuleList<Qwen35DecoderLayer> layers;
    public Qwen35RmsNorm norm;

    readonly Qwen35TextConfig config;

    public Qwen35TextModel(Qwen35TextConfig c, ScalarType dtype, Device? device) : base(nameof(Qwen35TextModel))
    {
        config = c;
        embed_tokens = new TokenEmbedding(c.VocabSize, c.HiddenSize, dtype, device);
        layers = new ModuleList<Qwen35DecoderLayer>();
        for (var i = 0; i < c.NumHiddenLayers; i++) layers.Add(new Qwen35DecoderLayer(c, i, dtype, device));
        norm = new Qwen35RmsNorm(c.HiddenSize, c.RmsNormEps, dtype, device);
        RegisterComponents();
    }

    public override Tensor forward(ModelInputs inputs) => Forward(inputs, null);

    /// <summary>Final-normed hidden states [B, T, h]. When <paramref name="hiddenStates"/> is given it receives the
    /// embedding output and the residual stream after every layer (HF's output_hidden_states, before the final
    /// norm), L+1 tensors owned by the caller's dispose scope.</summary>
    public Tensor Forward(ModelInputs inputs, List<Tensor>? hiddenStates)
    {
        using var scope = NewDisposeScope();
        var x = embed_tokens.forward(ValidIds(inputs));
        var (ctx, fullMask) = Prepare(inputs, x.dtype);
        hiddenStates?.Add(x.alias().MoveToOuterDisposeScope());
        foreach (var layer in layers)
        {
            x = layer.forward(x, ctx);
            hiddenStates?.Add(x.alias().MoveToOuterDisposeScope());
        }
        var y = norm.forward(x);
        inputs.Cache?.Advance(inputs.InputIds.shape[1], fullMask);
        return y.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The per-forward context the layers share (RoPE tables, attention mask, GDN pad mask, document starts), exactly
    /// as <see cref="Forward"/> builds it; for callers that run the layers one at a time (activation
    /// checkpointing). It reads the cache's length and mask but does not advance the cache.
    /// </summary>
    public LayerContext BuildContext(ModelInputs inputs, ScalarType activationDtype)
    {
        ValidIds(inputs);
        return Prepare(inputs, activationDtype).Context;
    }

    static Tensor ValidIds(ModelInputs inputs)
    {
        var ids = inputs.InputIds;
        if (ids.dim() != 2) throw new ArgumentException($"InputIds must be [B, T], got [{string.Join(", ", ids.shape)}]");
        if (inputs.SequenceIds is not null && inputs.Cache?.SeenTokens > 0)
            throw new ArgumentException("SequenceIds (packed rows) cannot be combined with a non-empty cache");
        return ids;
    }

    (LayerContext Context, Tensor? FullMask) Prepare(ModelInputs inputs, ScalarType dtype)
    {
        var ids = inputs.InputIds;
        long b = ids.shape[0], t = ids.shape[1];
        var cache = inputs.Cache;
        var past = cache?.SeenTokens ?? 0;
        var fullMask = FullMask(inputs.AttentionMask, cache, b, t, past);

        Tensor? docStarts = null, posInDoc = null;
        if (inputs.SequenceIds is { } seq)
        {
            // A document starts at t = 0 and wherever the id changes; RoPE offset = t - (index of its document start).
            docStarts = DocumentStarts.FromSequenceIds(seq);
            var index = arange(t, dtype: ScalarType.Int64, device: seq.device).expand(b, t);
            var startIndex = where(docStarts, index, zeros_like(index)).cummax(1).values;
            posInDoc = index - startIndex;
        }

        var positions = inputs.PositionIds
                        ?? posInDoc
                        ?? (fullMask is not null
                            ? (fullMask.cumsum(1) - 1).clamp_min(0).narrow(1, past, t)
                            : arange(past, past + t, dtype: ScalarType.Int64, device: ids.device).expand(b, t));
        var (cos, sin) = Rotary.Tables(positions, config.RotaryDim, config.RopeTheta, dtype);

        var spans = past == 0 && inputs.SequenceIds is not null ? DocumentSpans(inputs.DocumentOffsets, b, t) : null;
        var (attnMask, isCausal) = spans is not null
            ? (null, false)
            : AttentionMask(fullMask, inputs.SequenceIds, b, t, past, ids.device);
        var linearMask = fullMask is not null && t > 1 ? fullMask.narrow(1, past, t).to(dtype) : null;
        // Built on the host once per forward (no sync) and shared by every DeltaNet layer.
        ChunkAlignedLayout? layout = null, convLayout = null;
        if (past == 0 && inputs.SequenceIds is not null && inputs.DocumentOffsets is { } offsets)
        {
            CheckRowCount(offsets, b);
            layout = ChunkAlignedLayout.Create(offsets, t, GatedDeltaNet.ChunkSize, ids.device);
            convLayout = ChunkAlignedLayout.Create(offsets, t, 1, ids.device, gap: config.LinearConvKernelDim - 1);
        }
        return (new LayerContext(cos, sin, attnMask, isCausal, linearMask, docStarts, cache, spans, layout, convLayout), fullMask);
    }

    static void CheckRowCount(IReadOnlyList<int[]> offsets, long b)
    {
        if (offsets.Count != b) throw new ArgumentException($"DocumentOffsets has {offsets.Count} rows, the batch has {b}");
    }

    /// <summary>
    /// The per-row document spans from the host-side offsets, or null when they are absent or a row has more than
    /// <see cref="Qwen35Attention.MaxDocumentsPerRowForSplit"/> documents (then the block-diagonal mask is used).
    /// Offsets that do not describe [0, T) in ascending order are a caller error.
    /// </summary>
    static IReadOnlyList<(int Start, int Length)[]>? DocumentSpans(IReadOnlyList<int[]>? offsets, long b, long t)
    {
        if (offsets is null) return null;
        if (offsets.Count != b) throw new ArgumentException($"DocumentOffsets has {offsets.Count} rows, the batch has {b}");
        var rows = new (int Start, int Length)[b][];
        for (var r = 0; r < b; r++)
        {
            var o = offsets[r];
            if (o.Length == 0 || o[0] != 0) throw new ArgumentException($"DocumentOffsets row {r}: must start with 0");
            if (o.Length > Qwen35Attention.MaxDocumentsPerRowForSplit) return null;
            rows[r] = new (int, int)[o.Length];
            for (var d = 0; d < o.Length; d++)
            {
                var end = d + 1 < o.Length ? o[d + 1] : (int)t;
                if (end <= o[d] || end > t)
                    throw new ArgumentException($"DocumentOffsets row {r}: offsets [{string.Join(",", o)}] are not ascending within [0, {t})");
                rows[r][d] = (o[d], end - o[d]);
            }
        }
        return rows;
    }

    /// <summary>The 2-D mask over all keys [B, past+T], or null when every token is real and none was given.</summary>
    static Tensor? FullMask(Tensor? mask, ModelCache? cache, long b, long t, long past)
    {
        var previous = cache?.AttentionMask;
        if (mask is null)
            return previous is null ? null
                : cat([previous, ones(b, t, dtype: previous.dtype, device: previous.device)], 1);
        if (mask.dim() != 2 || mask.shape[0] != b || (mask.shape[1] != t && mask.shape[1] != past + t))
            throw new ArgumentException(
                $"AttentionMask must be [B, T] or [B, past+T] = [{b}, {t}] or [{b}, {past + t}], got [{string.Join(", ", mask.shape)}]");
        mask = mask.to(ScalarType.Int64);
        if (mask.shape[1] == past + t) return mask;
        if (past == 0) return mask;
        var earlier = previous ?? ones(b, past, dtype: ScalarType.Int64, device: mask.device);
        return cat([earlier, mask], 1);
    }

    /// <summary>
    /// The SDPA mask for full-attention layers: causal (query at absolute index past+i sees keys ≤ past+i), minus
    /// padded keys, minus other documents for packed rows. Null (with IsCausal) when the plain causal flag is exact.
    /// Each query always sees itself, so fully padded rows stay finite instead of NaN (their outputs are ignored).
    /// </summary>
    static (Tensor? Mask, bool IsCausal) AttentionMask(Tensor? fullMask, Tensor? seq, long b, long t, long past, Device device)
    {
        if (fullMask is null && seq is null)
        {
            if (past == 0) return (null, t > 1);
            if (t == 1) return (null, false);
        }
        var s = past + t;
        var q = arange(past, s, dtype: ScalarType.Int64, device: device).view(t, 1);
        var k = arange(s, dtype: ScalarType.Int64, device: device).view(1, s);
        var allowed = (k <= q).view(1, 1, t, s).expand(b, 1, t, s);
        if (fullMask is not null) allowed = allowed.logical_and(fullMask.to(ScalarType.Bool).view(b, 1, 1, s));
        if (seq is not null) allowed = allowed.logical_and(seq.view(b, 1, t, 1) == seq.view(b, 1, 1, t));
        allowed = allowed.logical_or((k == q).view(1, 1, t, s));
        return (allowed, false);
    }
}
