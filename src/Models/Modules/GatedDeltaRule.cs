using System.Collections.Concurrent;
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
        if (alignedLayout is null) return ChunkedScan(Prepare(q, k, v, g, beta), initialState, chunkSize, null);

        if (alignedLayout.Rows != batch || alignedLayout.Length != length || alignedLayout.ChunkSize != chunkSize)
            throw new ArgumentException($"alignedLayout was built for {Shapes.Format([alignedLayout.Rows, alignedLayout.Length])} " +
                $"with chunk size {alignedLayout.ChunkSize}, the inputs are {Shapes.Format([batch, length])} with chunk size {chunkSize}",
                nameof(alignedLayout));
        using var scope = NewDisposeScope();
        // Padding slots are zeros in the raw inputs; after Prepare they stay exactly 0 (0·rsqrt(0 + eps) = 0), the
        // same values the scan pads a document with when it runs alone. Tpad is a multiple of C: no further padding.
        var layout = alignedLayout;
        var (output, finalState) = ChunkedScan(Prepare(layout.ToAligned(q), layout.ToAligned(k), layout.ToAligned(v),
            layout.ToAligned(g), layout.ToAligned(beta)), initialState, chunkSize, layout.ChunkKeep);
        return (layout.FromAligned(output).MoveToOuterDisposeScope(), finalState.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// <see cref="Chunked"/> (without packed rows) for queries and keys given heads first in one tensor,
    /// <paramref name="queriesKeys"/> [B, 2·Hk, T, dk] (the Hk query heads, then the Hk key heads), and v [B,H,T,dv]:
    /// the layout the layer cuts from its conv output with one copy (three transposed copies otherwise), and one
    /// L2 normalisation for q and k together. g and β stay [B,T,H]. The same computation and rounding: bitwise
    /// <see cref="Chunked"/> of the transposed inputs.
    /// </summary>
    public static (Tensor Output, Tensor FinalState) ChunkedHeadsFirst(Tensor queriesKeys, Tensor v, Tensor g, Tensor beta,
        Tensor? initialState, int chunkSize = 64)
    {
        if (chunkSize < 1) throw new ArgumentOutOfRangeException(nameof(chunkSize), chunkSize, "chunk size must be ≥ 1");
        if (queriesKeys.dim() != 4 || queriesKeys.shape[1] % 2 != 0 || v.dim() != 4)
            throw new ArgumentException($"queriesKeys must be [B,2·Hk,T,dk] and v [B,H,T,dv], got {Shapes.Format(queriesKeys.shape)} and {Shapes.Format(v.shape)}");
        var kHeads = queriesKeys.shape[1] / 2;
        // The [B,T,H,d] checks on the heads-first shapes, read without making transposed views.
        long[] qShape = [queriesKeys.shape[0], queriesKeys.shape[2], kHeads, queriesKeys.shape[3]];
        Validate(qShape, qShape, [v.shape[0], v.shape[2], v.shape[1], v.shape[3]], g.shape, beta.shape, initialState?.shape);
        using var scope = NewDisposeScope();
        var normalized = L2Normalize(queriesKeys.InDtype(ScalarType.Float32).contiguous()).split([kHeads, kHeads], 1);
        var (q, k) = (normalized[0], normalized[1]);
        var prepared = new Prepared(q * Math.Pow(q.shape[3], -0.5), k, v.InDtype(ScalarType.Float32).contiguous(),
            HeadsFirst(g), HeadsFirst(beta), v.dtype);
        var (output, finalState) = ChunkedScan(prepared, initialState, chunkSize, null);
        return (output.MoveToOuterDisposeScope(), finalState.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// The chunked computation proper. <paramref name="chunkKeep"/> (fp32 [B, N], aligned layouts only) multiplies the
    /// carried state at the start of each chunk: 0 where a document starts on that chunk boundary.
    /// <para>Every matrix product is a <c>bmm</c>/<c>baddbmm</c> on 3-d tensors laid out [heads·chunks, C, *] or, in the
    /// scan, [B·H, C, *]: a matmul of 5-d or 6-d tensors is an expand, a reshape, a bmm and a view, each one more
    /// autograd node and kernel call in backward (docs/performance.md, "The delta rule's products").</para>
    /// </summary>
    static (Tensor Output, Tensor FinalState) ChunkedScan(Prepared p, Tensor? initialState, int chunkSize, Tensor? chunkKeep)
    {
        var (qf, kf, vf, gf, bf) = (p.Q, p.K, p.V, p.G, p.Beta);   // contiguous fp32 [B,Hk,T,dk] (q, k), [B,H,T,*]
        long batch = qf.shape[0], kHeads = qf.shape[1], length = qf.shape[2], dk = qf.shape[3], heads = vf.shape[1], dv = vf.shape[3];
        var outDtype = p.OutputDtype;

        using var scope = NewDisposeScope();

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
        long N = (length + pad) / C;

        // Grouped heads without copies: value head j = kh·G + r reads key head kh (= repeat_interleave), so every
        // per-value-head tensor is laid out [B, Hk, G, N, C, *] and q/k as [B, Hk, 1, N, C, dk], broadcasting over G.
        // The key-only products (q·kᵀ, k·kᵀ) are then computed once per key head instead of once per value head.
        long group = heads / kHeads;
        long[] keyShape = [batch, kHeads, 1, N, C, dk];
        // k is a split piece of [B, 2·Hk, T, dk] on the heads-first path: contiguous only for one row (reshape copies then).
        var k3 = kf.reshape(batch * kHeads * N, C, dk);
        var kT3 = k3.transpose(1, 2);
        var keyKey = k3.bmm(kT3).view(batch, kHeads, 1, N, C, C);                 // k_i·k_j
        var queryKey = qf.reshape(batch * kHeads * N, C, dk).bmm(kT3).view(batch, kHeads, 1, N, C, C);   // q_i·k_j
        var k6 = k3.view(keyShape);
        var q6 = qf.reshape(keyShape);
        var beta6 = bf.view(batch, kHeads, group, N, C, 1);
        // γ_i: log of the decay accumulated from the chunk start through position i.
        var gamma = gf.view(batch, kHeads, group, N, C).cumsum(-1);

        // D_ij = exp(γ_i − γ_j) for j ≤ i, else 0 (no chunk mixes documents: packed rows are chunk-aligned). Masking
        // to −inf before exp (rather than multiplying by a 0/1 mask afterwards) keeps exp from overflowing for j > i
        // and keeps its gradient finite (exp(−inf) = 0).
        var future = FutureMask(C, qf.device);
        var decay = (gamma.unsqueeze(-1) - gamma.unsqueeze(-2)).masked_fill(future, double.NegativeInfinity).exp();

        // Strictly lower part of the UT system: L_ij = β_i (k_i·k_j) D_ij. The diagonal is also filled but the
        // unit-triangular solve ignores it, so the system matrix is exactly I + L.
        var system = keyKey * (decay * beta6);
        var scores = queryKey * decay;   // P_ij = (q_i·k_j) D_ij, diagonal included

        // exp(γ_i): the decay of the carried state at each row.
        var stateDecay = gamma.exp().unsqueeze(-1);                                // [B,Hk,G,N,C,1]
        var newValues = linalg.solve_triangular(system, vf.view(batch, kHeads, group, N, C, dv) * beta6, upper: false, left: true, unitriangular: true);
        var kCumDecay = linalg.solve_triangular(system, k6 * (beta6 * stateDecay), upper: false, left: true, unitriangular: true);
        var qDecayed = q6 * stateDecay;
        // Keys as written into the end-of-chunk state: decayed from their position to the chunk end.
        var gammaLast = gamma.narrow(-1, C - 1, 1);                                // [B,Hk,G,N,1]
        var kWriteT = (k6 * (gammaLast - gamma).exp().unsqueeze(-1)).transpose(-1, -2);
        var chunkDecay = gammaLast.exp().unsqueeze(-1);                            // [B,Hk,G,N,1,1]: exp(γ_last)

        // Sequential scan over chunks, per value head: [B·H, N, ...] split into N views (unbind's backward is one
        // stack). Per chunk: three baddbmm, a bmm and the state decay.
        long bh = batch * heads;
        Tensor[] Chunks(Tensor x, long rows, long cols) => x.reshape(bh, N, rows, cols).unbind(1);
        var us = Chunks(newValues, C, dv);
        var ws = Chunks(kCumDecay, C, dk);
        var qs = Chunks(qDecayed, C, dk);
        var ps = Chunks(scores, C, C);
        var kws = Chunks(kWriteT, dk, C);
        var cds = Chunks(chunkDecay, 1, 1);
        // Per row and chunk, broadcast to the row's heads: [B·H, N, 1, 1] → N × [B·H, 1, 1].
        var keeps = chunkKeep?.view(batch, 1, N).expand(batch, heads, N).reshape(bh, N, 1, 1).unbind(1);

        // No initial state: the first chunk's terms in S are zero, so it starts from u and skips them (adding an
        // exact zero changes no value).
        var state = initialState?.InDtype(ScalarType.Float32).reshape(bh, dk, dv);
        var outputs = new Tensor[N];
        for (int n = 0; n < N; n++)
        {
            if (state is null)
            {
                outputs[n] = ps[n].bmm(us[n]);
                state = kws[n].bmm(us[n]);
                continue;
            }
            // A document starting at this chunk boundary sees a zero state, exactly as when it runs alone.
            if (keeps is not null && n > 0) state = state * keeps[n];
            var vNew = AddProduct(us[n], ws[n], state, alpha: -1);               // u − W S: what the old state does not predict
            outputs[n] = AddProduct(qs[n].bmm(state), ps[n], vNew);                // Q S + P (u − W S)
            state = AddProduct(state * cds[n], kws[n], vNew);                      // decayed S + Kᵀ (u − W S)
        }

        var output = stack(outputs, 1)                                           // [B·H, N, C, dv]
            .view(batch, heads, N * C, dv)
            .narrow(2, 0, length)
            .transpose(1, 2)
            .InDtype(outDtype)
            .contiguous();
        // N ≥ 1, so the loop set the state.
        return (output.MoveToOuterDisposeScope(), state!.view(batch, heads, dk, dv).MoveToOuterDisposeScope());
    }

    // The [C, C] mask of pairs j > i, built once per chunk size and device (a constant, outside every dispose scope)
    // rather than twice per layer and forward.
    static readonly ConcurrentDictionary<(long, string), Tensor> FutureMasks = new();

    static Tensor FutureMask(long chunkSize, Device device) => FutureMasks.GetOrAdd((chunkSize, device.ToString()), _ =>
    {
        using var scope = NewDisposeScope();
        return ones(chunkSize, chunkSize, ScalarType.Bool, device).triu(1).DetachFromDisposeScope();
    });

    /// <summary>input + alpha·(a @ b) for batches of matrices, one <c>baddbmm</c>. (TorchSharp's instance method takes
    /// the first factor as <c>this</c> and the summand last, unlike <c>torch.baddbmm</c>.)</summary>
    static Tensor AddProduct(Tensor input, Tensor a, Tensor b, float alpha = 1) => a.baddbmm(b, input, beta: 1, alpha: alpha);

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
        var (qf, kf, vf, gf, bf, _) = Prepare(q, k, v, g, beta);
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
            : initialState.InDtype(ScalarType.Float32);
        var outputs = new List<Tensor>((int)length);
        for (int t = 0; t < length; t++)
        {
            state = state * decays[t];
            var memory = ks[t].unsqueeze(-2).matmul(state).squeeze(-2);        // Sᵀk  [B,H,dv]
            var delta = (vs[t] - memory) * betas[t];
            state = state + ks[t].unsqueeze(-1) * delta.unsqueeze(-2);
            outputs.Add(qs[t].unsqueeze(-2).matmul(state).squeeze(-2));         // Sᵀq  [B,H,dv]
        }

        var output = stack(outputs, 1).InDtype(outDtype).contiguous();              // [B,T,H,dv]
        return (output.MoveToOuterDisposeScope(), state.MoveToOuterDisposeScope());
    }

    /// <summary>The delta rule's inputs as the scan takes them: fp32, contiguous, heads first ([B,Hk,T,dk] q and k,
    /// L2-normalised, q scaled by dk^-½; [B,H,T,dv] v; [B,H,T] g and β), and the dtype of the output.</summary>
    sealed record Prepared(Tensor Q, Tensor K, Tensor V, Tensor G, Tensor Beta, ScalarType OutputDtype);

    /// <summary>
    /// From [B,T,H,*] inputs. Whatever their strides (the layer passes views of its conv output; chunk-aligned
    /// copies are contiguous), the values land in the same memory layout, so CPU reductions and matmuls round the
    /// same way and a document gives bitwise the same result packed and alone.
    /// </summary>
    static Prepared Prepare(Tensor q, Tensor k, Tensor v, Tensor g, Tensor beta) =>
        new(L2Normalize(HeadsFirst(q)) * Math.Pow(q.shape[3], -0.5), L2Normalize(HeadsFirst(k)), HeadsFirst(v),
            HeadsFirst(g), HeadsFirst(beta), v.dtype);

    /// <summary>[B,T,H,*] → contiguous fp32 [B,H,T,*].</summary>
    static Tensor HeadsFirst(Tensor x) => x.InDtype(ScalarType.Float32).transpose(1, 2).contiguous();

    // Eps inside the sqrt, exactly like FLA / HF's l2norm.
    static Tensor L2Normalize(Tensor x) => x * (x * x).sum(-1, keepdim: true).add(L2Eps).rsqrt();

    static (long B, long T, long H, long Dk, long Dv) Validate(Tensor q, Tensor k, Tensor v, Tensor g, Tensor beta,
        Tensor? initialState) => Validate(q.shape, k.shape, v.shape, g.shape, beta.shape, initialState?.shape);

    /// <summary>The checks on shapes alone: q, k [B,T,Hk,dk], v [B,T,H,dv] with Hk dividing H, g and β [B,T,H],
    /// the initial state [B,H,dk,dv].</summary>
    static (long B, long T, long H, long Dk, long Dv) Validate(long[] q, long[] k, long[] v, long[] g, long[] beta, long[]? initialState)
    {
        if (q.Length != 4) throw new ArgumentException($"q must be [B,T,H,dk], got {Shapes.Format(q)}", nameof(q));
        long b = q[0], t = q[1], hk = q[2], dk = q[3];
        if (t < 1) throw new ArgumentException("the sequence must hold at least one token", nameof(q));
        if (!k.SequenceEqual(q))
            throw new ArgumentException($"k must match q {Shapes.Format(q)}, got {Shapes.Format(k)}", nameof(k));
        if (v.Length != 4 || v[0] != b || v[1] != t || v[2] % hk != 0)
            throw new ArgumentException($"v must be [{b},{t},H,dv] with H a multiple of q/k's {hk} heads, got {Shapes.Format(v)}", nameof(v));
        long h = v[2];
        long[] bth = [b, t, h];
        if (!g.SequenceEqual(bth)) throw new ArgumentException($"g must be {Shapes.Format([b, t, h])}, got {Shapes.Format(g)}", nameof(g));
        if (!beta.SequenceEqual(bth)) throw new ArgumentException($"beta must be {Shapes.Format([b, t, h])}, got {Shapes.Format(beta)}", nameof(beta));
        long dv = v[3];
        if (initialState is not null && !initialState.SequenceEqual(new[] { b, h, dk, dv }))
            throw new ArgumentException($"initialState must be {Shapes.Format([b, h, dk, dv])}, got {Shapes.Format(initialState)}", nameof(initialState));
        return (b, t, h, dk, dv);
    }
}
