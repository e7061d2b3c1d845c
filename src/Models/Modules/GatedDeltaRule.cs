using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Models.Modules;

/// <summary>
/// The gated delta rule of Qwen3.5's linear-attention (Gated DeltaNet) layers, in two exact forms:
/// <see cref="Chunked"/> (training and prefill: all intra-chunk work batched, a short sequential scan over chunks)
/// and <see cref="Recurrent"/> (the step-by-step definition, used for one-token cached decode and as the reference).
/// <para>
/// Shapes (both forms): q, k [B,T,Hk,dk] with Hk dividing the value heads H (value head j reads key head
/// j / (H/Hk), HF's repeat_interleave, done here by broadcasting instead of copying; Hk = H also works);
/// v [B,T,H,dv]; g (log-decay, ≤ 0) and beta [B,T,H]; initial/final state [B,H,dk,dv] fp32.
/// As in Hugging Face with <c>use_qk_l2norm_in_kernel=True</c>, q and k are L2-normalised over dk here
/// (x / sqrt(Σx² + 1e-6)) and q is scaled by dk^-½. All math is fp32; the output is cast to v's dtype.
/// </para>
/// <para>
/// Packed rows: <see cref="Chunked"/> with a <see cref="ChunkAlignedLayout"/> moves every document onto a chunk
/// boundary and zeroes the state there, so every document sees only its own tokens and is computed exactly as when
/// run alone; the first document of a row continues from <c>initialState</c> (zero when null), which therefore
/// applies to the first document only. See docs/deltanet.md for the derivation.
/// </para>
/// </summary>
public static class GatedDeltaRule
{
    const double L2Eps = 1e-6;

    /// <summary>
    /// Chunked gated delta rule (WY/UT form). T is right-padded with zeros to a multiple of
    /// <paramref name="chunkSize"/>; zero k and β and g = 0 neither decay nor write the state, so the final state is
    /// exact. Each chunk's output is a fresh tensor and the chunks are concatenated once, so the backward pass has no
    /// slice-copy nodes.
    /// </summary>
    /// <param name="alignedLayout">packed rows: every document is moved to start on a chunk boundary, the scan zeroes
    /// the state at those boundaries, and the outputs are gathered back, so each document is computed exactly as when
    /// run alone.</param>
    public static (Tensor Output, Tensor FinalState) Chunked(Tensor q, Tensor k, Tensor v, Tensor g, Tensor beta,
        Tensor? initialState, int chunkSize = 64, ChunkAlignedLayout? alignedLayout = null)
    {
        if (chunkSize < 1) throw new ArgumentOutOfRangeException(nameof(chunkSize), chunkSize, "chunk size must be ≥ 1");
        var (batch, length, _, _, _) = Validate(q, k, v, g, beta, initialState);
        if (alignedLayout is null) return ChunkedScan(q, k, v, g, beta, initialState, chunkSize, null);

        if (alignedLayout.Rows != batch || alignedLayout.Length != length || alignedLayout.ChunkSize != chunkSize)
            throw new ArgumentException($"alignedLayout was built for {Shapes.Format([alignedLayout.Rows, alignedLayout.Length])} " +
                $"with chunk size {alignedLayout.ChunkSize}, the inputs are {Shapes.Format([batch, length])} with chunk size {chunkSize}",
                nameof(alignedLayout));
        using var scope = NewDisposeScope();
        // Padding slots are zeros in the raw inputs; after Prepare they stay exactly 0 (0·rsqrt(0 + eps) = 0), the
        // same values the scan pads a document with when it runs alone. Tpad is a multiple of C: no further padding.
        var layout = alignedLayout;
        var (output, finalState) = ChunkedScan(layout.ToAligned(q), layout.ToAligned(k), layout.ToAligned(v),
            layout.ToAligned(g), layout.ToAligned(beta), initialState, chunkSize, layout.ChunkKeep);
        return (layout.FromAligned(output).MoveToOuterDisposeScope(), finalState.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// The chunked computation proper. <paramref name="chunkKeep"/> (fp32 [B, N], aligned layouts only) multiplies the
    /// carried state at the start of each chunk: 0 where a document starts on that chunk boundary.
    /// </summary>
    static (Tensor Output, Tensor FinalState) ChunkedScan(Tensor q, Tensor k, Tensor v, Tensor g, Tensor beta,
        Tensor? initialState, int chunkSize, Tensor? chunkKeep)
    {
        long batch = q.shape[0], length = q.shape[1], heads = v.shape[2], dk = q.shape[3], dv = v.shape[3];
        var outDtype = v.dtype;

        using var scope = NewDisposeScope();
        var (qf, kf, vf, gf, bf) = Prepare(q, k, v, g, beta);   // [B,Hq,T,dk] (Hq = q's heads), [B,H,T,*], fp32

        long C = chunkSize;
        long pad = (C - length % C) % C;
        if (pad > 0)
        {
            qf = nn.functional.pad(qf, [0, 0, 0, pad]);
            kf = nn.functional.pad(kf, [0, 0, 0, pad]);
            vf = nn.functional.pad(vf, [0, 0, 0, pad]);
            gf = nn.functional.pad(gf, [0, pad]);
            bf = nn.functional.pad(bf, [0, pad]);
        }
        long chunks = (length + pad) / C;

        // Grouped heads without copies: value head j = kh·G + r reads key head kh (= repeat_interleave), so every
        // per-value-head tensor is laid out [B, Hk, G, N, C, *] and q/k as [B, Hk, 1, N, C, dk], broadcasting over G.
        // The key-only products (q·kᵀ, k·kᵀ) are then computed once per key head instead of once per value head.
        long kHeads = q.shape[2], group = heads / kHeads;
        var q5 = qf.reshape(batch, kHeads, 1, chunks, C, dk);
        var k5 = kf.reshape(batch, kHeads, 1, chunks, C, dk);
        var v5 = vf.reshape(batch, kHeads, group, chunks, C, dv);
        var beta4 = bf.reshape(batch, kHeads, group, chunks, C);
        // γ_i: log of the decay accumulated from the chunk start through position i.
        var gamma = gf.reshape(batch, kHeads, group, chunks, C).cumsum(-1);

        // Which (i, j) pairs of a chunk interact: j ≤ i (no chunk mixes documents: packed rows are chunk-aligned).
        var allowed = ones(C, C, ScalarType.Bool, q.device).tril();

        // D_ij = exp(γ_i − γ_j) for allowed pairs, else 0. Masking to −inf before exp (rather than multiplying by a
        // 0/1 mask afterwards) keeps exp from overflowing for j > i and keeps its gradient finite (exp(−inf) = 0).
        var decay = (gamma.unsqueeze(-1) - gamma.unsqueeze(-2)).masked_fill(allowed.logical_not(), double.NegativeInfinity).exp();

        var vBeta = v5 * beta4.unsqueeze(-1);
        var kT = k5.transpose(-1, -2);
        // Strictly lower part of the UT system: L_ij = β_i (k_i·k_j) D_ij. The diagonal is also filled but the
        // unit-triangular solve ignores it, so the system matrix is exactly I + L.
        var system = k5.matmul(kT) * (decay * beta4.unsqueeze(-1));
        var scores = q5.matmul(kT) * decay;   // P_ij = (q_i·k_j) D_ij, diagonal included

        // exp(γ_i): the decay of the carried state at each row.
        var stateDecay = gamma.exp();

        var newValues = linalg.solve_triangular(system, vBeta, upper: false, left: true, unitriangular: true);
        var kCumDecay = linalg.solve_triangular(system, k5 * (beta4 * stateDecay).unsqueeze(-1), upper: false, left: true, unitriangular: true);

        var qDecayed = q5 * stateDecay.unsqueeze(-1);
        // Keys as written into the end-of-chunk state: decayed from their position to the chunk end.
        var keyToEnd = (gamma.narrow(-1, C - 1, 1) - gamma).exp();
        var kWriteT = (k5 * keyToEnd.unsqueeze(-1)).transpose(-1, -2);
        var chunkDecay = stateDecay.narrow(-1, C - 1, 1).unsqueeze(-1);   // [B,Hk,G,N,1,1]: exp(γ_last)

        // Sequential scan over chunks. unbind yields views whose backward is a single stack, not per-slice copies.
        var us = newValues.unbind(3);
        var ws = kCumDecay.unbind(3);
        var qs = qDecayed.unbind(3);
        var ps = scores.unbind(3);
        var kws = kWriteT.unbind(3);
        var cds = chunkDecay.unbind(3);
        var keeps = chunkKeep?.reshape(batch, 1, 1, chunks, 1, 1).unbind(3);   // each [B,1,1,1,1]

        var state = initialState is null
            ? zeros([batch, kHeads, group, dk, dv], ScalarType.Float32, q.device)
            : initialState.to(ScalarType.Float32).reshape(batch, kHeads, group, dk, dv);
        var outputs = new List<Tensor>((int)chunks);
        for (int n = 0; n < chunks; n++)
        {
            // A document starting at this chunk boundary sees a zero state, exactly as when it runs alone.
            if (keeps is not null && n > 0) state = state * keeps[n];
            var vNew = us[n] - ws[n].matmul(state);               // u − W S: the part the old state does not predict
            outputs.Add(qs[n].matmul(state) + ps[n].matmul(vNew));
            state = state * cds[n] + kws[n].matmul(vNew);
        }

        var output = cat(outputs, 3)                                // [B,Hk,G,Tpad,dv]
            .reshape(batch, heads, chunks * C, dv)
            .narrow(2, 0, length)
            .transpose(1, 2)
            .to(outDtype)
            .contiguous();
        return (output.MoveToOuterDisposeScope(), state.reshape(batch, heads, dk, dv).MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Step-by-step gated delta rule, per token: S ← exp(g_t)·S; m = Sᵀk_t; δ = β_t(v_t − m); S ← S + k_t δᵀ;
    /// o_t = Sᵀq_t (the output reads the state after the write). The per-token loop makes this the decode/reference
    /// path, not a training path.
    /// </summary>
    public static (Tensor Output, Tensor FinalState) Recurrent(Tensor q, Tensor k, Tensor v, Tensor g, Tensor beta,
        Tensor? initialState)
    {
        var (batch, length, heads, dk, dv) = Validate(q, k, v, g, beta, initialState);
        var outDtype = v.dtype;

        using var scope = NewDisposeScope();
        var (qf, kf, vf, gf, bf) = Prepare(q, k, v, g, beta);
        // Grouped key heads: the per-token path is for decode and reference, so a plain repeat is fine here.
        if (q.shape[2] != heads)
        {
            qf = qf.repeat_interleave(heads / q.shape[2], dim: 1);
            kf = kf.repeat_interleave(heads / q.shape[2], dim: 1);
        }
        var qs = qf.unbind(2);
        var ks = kf.unbind(2);
        var vs = vf.unbind(2);
        var decays = gf.exp().unsqueeze(-1).unsqueeze(-1).unbind(2);   // each [B,H,1,1]
        var betas = bf.unsqueeze(-1).unbind(2);                          // each [B,H,1]

        var state = initialState is null
            ? zeros(batch, heads, dk, dv, ScalarType.Float32, q.device)
            : initialState.to(ScalarType.Float32);
        var outputs = new List<Tensor>((int)length);
        for (int t = 0; t < length; t++)
        {
            state = state * decays[t];
            var memory = ks[t].unsqueeze(-2).matmul(state).squeeze(-2);        // Sᵀk  [B,H,dv]
            var delta = (vs[t] - memory) * betas[t];
            state = state + ks[t].unsqueeze(-1) * delta.unsqueeze(-2);
            outputs.Add(qs[t].unsqueeze(-2).matmul(state).squeeze(-2));         // Sᵀq  [B,H,dv]
        }

        var output = stack(outputs, 1).to(outDtype).contiguous();              // [B,T,H,dv]
        return (output.MoveToOuterDisposeScope(), state.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// fp32, [B,H,T,*] layout, L2-normalised q and k, q scaled by dk^-½. The inputs are made contiguous first: the
    /// layer passes strided views (split of the conv output), and CPU reductions and matmuls round differently for
    /// different memory layouts, so without this a document would not give bitwise the same result packed
    /// (chunk-aligned copies are contiguous) and alone. For already contiguous inputs it is a no-op.
    /// </summary>
    static (Tensor Q, Tensor K, Tensor V, Tensor G, Tensor Beta) Prepare(Tensor q, Tensor k, Tensor v, Tensor g, Tensor beta)
    {
        var qf = L2Normalize(q.to(ScalarType.Float32).contiguous().transpose(1, 2));
        var kf = L2Normalize(k.to(ScalarType.Float32).contiguous().transpose(1, 2));
        qf = qf * Math.Pow(q.shape[3], -0.5);
        var vf = v.to(ScalarType.Float32).contiguous().transpose(1, 2);
        var gf = g.to(ScalarType.Float32).contiguous().transpose(1, 2);
        var bf = beta.to(ScalarType.Float32).contiguous().transpose(1, 2);
        return (qf, kf, vf, gf, bf);
    }

    // Eps inside the sqrt, exactly like FLA / HF's l2norm.
    static Tensor L2Normalize(Tensor x) => x * (x * x).sum(-1, keepdim: true).add(L2Eps).rsqrt();

    static (long B, long T, long H, long Dk, long Dv) Validate(Tensor q, Tensor k, Tensor v, Tensor g, Tensor beta,
        Tensor? initialState)
    {
        if (q.dim() != 4) throw new ArgumentException($"q must be [B,T,H,dk], got {Shapes.Format(q.shape)}", nameof(q));
        long b = q.shape[0], t = q.shape[1], hk = q.shape[2], dk = q.shape[3];
        if (t < 1) throw new ArgumentException("the sequence must hold at least one token", nameof(q));
        if (!k.shape.SequenceEqual(q.shape))
            throw new ArgumentException($"k must match q {Shapes.Format(q.shape)}, got {Shapes.Format(k.shape)}", nameof(k));
        if (v.dim() != 4 || v.shape[0] != b || v.shape[1] != t || v.shape[2] % hk != 0)
            throw new ArgumentException($"v must be [{b},{t},H,dv] with H a multiple of q/k's {hk} heads, got {Shapes.Format(v.shape)}", nameof(v));
        long h = v.shape[2];
        long[] bth = [b, t, h];
        if (!g.shape.SequenceEqual(bth)) throw new ArgumentException($"g must be {Shapes.Format([b, t, h])}, got {Shapes.Format(g.shape)}", nameof(g));
        if (!beta.shape.SequenceEqual(bth)) throw new ArgumentException($"beta must be {Shapes.Format([b, t, h])}, got {Shapes.Format(beta.shape)}", nameof(beta));
        long dv = v.shape[3];
        if (initialState is not null && !initialState.shape.SequenceEqual(new[] { b, h, dk, dv }))
            throw new ArgumentException($"initialState must be {Shapes.Format([b, h, dk, dv])}, got {Shapes.Format(initialState.shape)}", nameof(initialState));
        return (b, t, h, dk, dv);
    }
}
