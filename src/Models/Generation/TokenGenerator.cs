using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Models.Generation;

/// <summary>
/// Autoregressive generation over one decoding session of an <see cref="IStepModel"/> (one batch of rows and its
/// cache). The first <see cref="Generate"/> call prefills the prompts, left-padded to a common length (pads are
/// masked; positions = cumsum(mask) − 1, so every row's first real token is at position 0), then decodes one token
/// per step for all rows. Later calls continue the same rows from the cached state with more tokens.
/// <para>
/// The cache holds every token fed so far: the prompt and each generated token except the last one of a call (as in
/// Hugging Face, the final token is returned but never run). A continuation therefore starts with that last token,
/// e.g. <c>[lastGenerated, ..next user turn..]</c>.
/// </para>
/// </summary>
public sealed class TokenGenerator
{
    readonly IStepModel model;
    readonly Device device;
    long[]? positions;   // per row: real tokens already in the cache = RoPE position of the next token

    public TokenGenerator(IStepModel model)
    {
        this.model = model;
        device = model.Device;
    }

    /// <summary>Rows of this session (0 before the first call).</summary>
    public int BatchSize => positions?.Length ?? 0;

    /// <summary>Per row, the real (unpadded) tokens already cached, i.e. the position the next token gets.</summary>
    public IReadOnlyList<long> CachedTokens => positions ?? [];

    /// <summary>
    /// Feeds <paramref name="tokens"/> (one array per row) and generates up to <see cref="GenerationOptions.MaxNewTokens"/>
    /// tokens per row. First call: any lengths ≥ 1 (left padding). Continuation: the same number of rows, and equal
    /// lengths when there is more than one row, because a pad in the middle of a row would not be exact for the
    /// DeltaNet layers (a zeroed input still decays their state) nor for the conv context.
    /// </summary>
    public GenerationResult Generate(IReadOnlyList<int[]> tokens, GenerationOptions options)
    {
        options.Validate();
        if (tokens.Count == 0) throw new ArgumentException("need at least one row", nameof(tokens));
        for (int b = 0; b < tokens.Count; b++)
            if (tokens[b].Length == 0) throw new ArgumentException($"row {b} has no tokens", nameof(tokens));
        int rows = tokens.Count;
        if (positions is not null)
        {
            if (rows != positions.Length)
                throw new ArgumentException($"this session has {positions.Length} rows; a continuation must give tokens for exactly those rows, got {rows}", nameof(tokens));
            if (tokens.Any(t => t.Length != tokens[0].Length))
                throw new ArgumentException("continuation rows must have equal lengths (padding inside a row is not exact for the DeltaNet layers)", nameof(tokens));
        }
        var pos = positions ?? new long[rows];
        var stop = options.StopTokenIds.ToHashSet();

        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        using var sampler = new TokenSampler(options);

        // Prefill (or continuation): left-pad to the longest row.
        int width = tokens.Max(t => t.Length);
        var ids = new long[rows * width];
        var mask = new long[rows * width];
        var positionIds = new long[rows * width];
        for (int b = 0; b < rows; b++)
        {
            int padCount = width - tokens[b].Length;
            for (int j = 0; j < width; j++)
            {
                int at = b * width + j;
                bool real = j >= padCount;
                ids[at] = real ? tokens[b][j - padCount] : options.PadTokenId;
                mask[at] = real ? 1 : 0;
                // Pads get position 0 (their value is irrelevant: they are masked as keys and zeroed for the DeltaNet).
                positionIds[at] = real ? pos[b] + (j - padCount) : 0;
            }
            pos[b] += tokens[b].Length;
        }
        positions = pos;
        var logits = RunStep(ids, mask, positionIds, rows, width);

        var generated = Enumerable.Range(0, rows).Select(_ => new List<int>()).ToArray();
        var reasons = Enumerable.Repeat(FinishReason.MaxNewTokens, rows).ToArray();
        var finished = new bool[rows];
        var ones = Enumerable.Repeat(1L, rows).ToArray();
        for (int step = 0; step < options.MaxNewTokens; step++)
        {
            long[] next;
            using (var pickScope = NewDisposeScope())
                next = sampler.Pick(logits).data<long>().ToArray();   // host sync: generation needs the ids anyway
            logits.Dispose();
            logits = null;

            for (int b = 0; b < rows; b++)
            {
                if (finished[b]) continue;
                generated[b].Add((int)next[b]);
                if (stop.Contains((int)next[b])) { finished[b] = true; reasons[b] = FinishReason.StopToken; }
            }
            if (finished.All(f => f) || step == options.MaxNewTokens - 1) break;

            // Rows that already stopped keep stepping (batch shapes stay fixed) on the pad id; their outputs are dropped.
            var feed = new long[rows];
            var feedPositions = new long[rows];
            for (int b = 0; b < rows; b++)
            {
                feed[b] = finished[b] ? options.PadTokenId : next[b];
                feedPositions[b] = pos[b]++;
            }
            logits = RunStep(feed, ones, feedPositions, rows, 1);
        }
        logits?.Dispose();
        return new GenerationResult(generated.Select(g => g.ToArray()).ToArray(), reasons);
    }

    Tensor RunStep(long[] ids, long[] mask, long[] positionIds, int rows, int width)
    {
        using var scope = NewDisposeScope();
        var idT = tensor(ids, [rows, width]).to(device);
        var maskT = tensor(mask, [rows, width]).to(device);
        var posT = tensor(positionIds, [rows, width]).to(device);
        return model.Step(idT, maskT, posT).MoveToOuterDisposeScope();
    }
}
