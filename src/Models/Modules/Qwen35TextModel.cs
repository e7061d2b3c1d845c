using Qwen35.Models.Config;
using Qwen35.Models.Generation;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Qwen35.Models.Modules;

/// <summary>
/// The text decoder (HF <c>Qwen3_5TextModel</c>): embed_tokens, layers, norm. Prepares masks, positions, RoPE tables
/// and packed-document layouts once per forward (<see cref="LayerContext"/>) and runs the layers; training's
/// forward + backward, optionally with per-layer activation checkpointing, is in Qwen35TextModel.Training.cs.
/// </summary>
public sealed partial class Qwen35TextModel : nn.Module<ModelInputs, Tensor>
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

    static Tensor ValidIds(ModelInputs inputs)
    {
        var ids = inputs.InputIds;
        if (ids.dim() != 2) throw new ArgumentException($"InputIds must be [B, T], got {Shapes.Format(ids.shape)}");
        if (inputs.Documents is { } docs)
        {
            if (inputs.Cache is not null || inputs.AttentionMask is not null || inputs.PositionIds is not null)
                throw new ArgumentException("Documents cannot be combined with a cache, an AttentionMask or PositionIds (they describe the padding and positions)");
            docs.Validate(ids.shape[0], ids.shape[1]);
        }
        return ids;
    }

    /// <summary>
    /// The one place where the inputs become what the layers share: the padding mask, RoPE positions, the attention
    /// form (causal flag, per-document spans or a mask) and, for packed rows, the chunk-aligned DeltaNet layouts, all
    /// derived from <see cref="ModelInputs.Documents"/> (host arrays, uploaded once; no device sync) or from the
    /// generation inputs (AttentionMask, PositionIds, cache).
    /// </summary>
    (LayerContext Context, Tensor? FullMask) Prepare(ModelInputs inputs, ScalarType dtype)
    {
        var ids = inputs.InputIds;
        long b = ids.shape[0], t = ids.shape[1];
        var device = ids.device;
        var cache = inputs.Cache;
        var past = cache?.SeenTokens ?? 0;
        var docs = inputs.Documents;
        var packed = docs is { IsPacked: true };
        var mask = inputs.AttentionMask
                   ?? (docs is not null && docs.HasPadding(t) ? tensor(docs.Mask(t), [b, t], device: device) : null);
        var fullMask = FullMask(mask, cache, b, t, past);

        // Packed rows: RoPE restarts at 0 per document (padding continues the last document's count).
        var positions = inputs.PositionIds
                        ?? (packed ? tensor(docs!.Positions(t), [b, t], device: device) : null)
                        ?? (fullMask is not null
                            ? (fullMask.cumsum(1) - 1).clamp_min(0).narrow(1, past, t)
                            : arange(past, past + t, dtype: ScalarType.Int64, device: device).expand(b, t));
        var (cos, sin) = Rotary.Tables(positions, config.RotaryDim, config.RopeTheta, dtype);

        // Packed rows attend per document (causal flag per document), unless a row has too many documents for one
        // SDPA call each: then the block-diagonal [T, T] mask bounds the kernel count per layer.
        var spans = packed && docs!.PerDocumentAttention && docs.Starts.All(s => s.Length <= Qwen35Attention.MaxDocumentsPerRowForSplit)
            ? docs.Spans(t)
            : null;
        var documentIds = packed && spans is null ? tensor(docs!.DocumentIds(t), [b, t], device: device) : null;
        var (attnMask, isCausal) = spans is not null
            ? (null, false)
            : AttentionMask(fullMask, documentIds, b, t, past, device);
        var linearMask = fullMask is not null && t > 1 ? fullMask.narrow(1, past, t).to(dtype) : null;
        // Every document on a chunk boundary (delta rule) and K−1 zeros apart (conv): each is computed exactly as alone.
        ChunkAlignedLayout? layout = null, convLayout = null;
        if (packed)
        {
            layout = ChunkAlignedLayout.Create(docs!.Starts, t, GatedDeltaNet.ChunkSize, device);
            convLayout = ChunkAlignedLayout.Create(docs.Starts, t, 1, device, gap: config.LinearConvKernelDim - 1);
        }
        return (new LayerContext(cos, sin, attnMask, isCausal, linearMask, cache, spans, layout, convLayout), fullMask);
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
                $"AttentionMask must be [B, T] or [B, past+T] = {Shapes.Format([b, t])} or {Shapes.Format([b, past + t])}, got {Shapes.Format(mask.shape)}");
        mask = mask.to(ScalarType.Int64);
        if (mask.shape[1] == past + t) return mask;
        if (past == 0) return mask;
        var earlier = previous ?? ones(b, past, dtype: ScalarType.Int64, device: mask.device);
        return cat([earlier, mask], 1);
    }

    /// <summary>
    /// The SDPA mask for full-attention layers: causal (query at absolute index past+i sees keys ≤ past+i), minus
    /// padded keys, minus other documents for packed rows (<paramref name="documentIds"/>, [B, T]). Null (with IsCausal) when the plain causal flag is exact.
    /// Each query always sees itself, so fully padded rows stay finite instead of NaN (their outputs are ignored).
    /// </summary>
    static (Tensor? Mask, bool IsCausal) AttentionMask(Tensor? fullMask, Tensor? documentIds, long b, long t, long past, Device device)
    {
        if (fullMask is null && documentIds is null)
        {
            if (past == 0) return (null, t > 1);
            if (t == 1) return (null, false);
        }
        var s = past + t;
        var q = arange(past, s, dtype: ScalarType.Int64, device: device).view(t, 1);
        var k = arange(s, dtype: ScalarType.Int64, device: device).view(1, s);
        var allowed = (k <= q).view(1, 1, t, s).expand(b, 1, t, s);
        if (fullMask is not null) allowed = allowed.logical_and(fullMask.to(ScalarType.Bool).view(b, 1, 1, s));
        if (documentIds is not null) allowed = allowed.logical_and(documentIds.view(b, 1, t, 1) == documentIds.view(b, 1, 1, t));
        allowed = allowed.logical_or((k == q).view(1, 1, t, s));
        return (allowed, false);
    }
}
