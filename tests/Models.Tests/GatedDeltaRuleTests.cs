using Qwen35.Models.Modules;
using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Models.Tests;

/// <summary>
/// The chunked kernel against the step-by-step recurrence (the definition), and packed (chunk-aligned) rows against
/// running each document alone. Everything is fp32 and seeded; shapes are tiny so the whole file runs in seconds.
/// </summary>
public class GatedDeltaRuleTests
{
    const double Tol = 1e-5;

    /// <summary>Random kernel inputs like the layer produces: q/k with Hk heads repeat-interleaved to Hv = Hk·group,
    /// g = −exp(A)·softplus(a) ≤ 0 (a range of decay strengths), β = sigmoid(b).</summary>
    sealed record Inputs(Tensor Q, Tensor K, Tensor V, Tensor G, Tensor Beta, Tensor State);

    static Inputs MakeInputs(long seed, long batch, long length, long keyHeads, long group, long dk = 8, long dv = 6)
    {
        var gen = new Generator((ulong)seed);
        long heads = keyHeads * group;
        var q = randn(batch, length, keyHeads, dk, generator: gen).repeat_interleave(group, 2);
        var k = randn(batch, length, keyHeads, dk, generator: gen).repeat_interleave(group, 2);
        var v = randn(batch, length, heads, dv, generator: gen);
        var a = randn(batch, length, heads, generator: gen);
        var aLog = (rand(heads, generator: gen) * 2 - 1.5);   // A in (0.22, 1.6): decays per step from mild to strong
        var g = -aLog.exp() * nn.functional.softplus(a + 1);
        var beta = randn(batch, length, heads, generator: gen).sigmoid();
        var state = randn(batch, heads, dk, dv, generator: gen) * 0.5;
        return new Inputs(q, k, v, g, beta, state);
    }

    static double MaxDiff(Tensor a, Tensor b) => (a - b).abs().max().ToDouble();

    [TestCase(1), TestCase(63), TestCase(64), TestCase(65), TestCase(200)]
    public void ChunkedMatchesRecurrent(int length)
    {
        foreach (var group in new[] { 1, 2, 3 })
        foreach (var withState in new[] { false, true })
        {
            using var scope = NewDisposeScope();
            var x = MakeInputs(seed: 1000 + length * 10 + group, batch: 2, length, keyHeads: 2, group);
            var init = withState ? x.State : null;
            var (oc, sc) = GatedDeltaRule.Chunked(x.Q, x.K, x.V, x.G, x.Beta, init);
            var (or, sr) = GatedDeltaRule.Recurrent(x.Q, x.K, x.V, x.G, x.Beta, init);
            Assert.That(oc.shape, Is.EqualTo(new long[] { 2, length, 2 * group, 6 }));
            Assert.That(sc.shape, Is.EqualTo(new long[] { 2, 2 * group, 8, 6 }));
            var label = $"T={length} group={group} state={withState}";
            Assert.That(MaxDiff(oc, or), Is.LessThanOrEqualTo(Tol), "output " + label);
            Assert.That(MaxDiff(sc, sr), Is.LessThanOrEqualTo(Tol), "final state " + label);
            // Guard against a vacuous pass (e.g. both returning zeros).
            Assert.That(or.abs().max().ToDouble(), Is.GreaterThan(0.05), label);
        }
    }

    [Test]
    public void SmallChunksAndStatePassThroughManyChunks()
    {
        using var scope = NewDisposeScope();
        var x = MakeInputs(seed: 7, batch: 1, length: 37, keyHeads: 1, group: 2);
        var (or, sr) = GatedDeltaRule.Recurrent(x.Q, x.K, x.V, x.G, x.Beta, x.State);
        foreach (var chunk in new[] { 1, 4, 5, 16 })
        {
            var (oc, sc) = GatedDeltaRule.Chunked(x.Q, x.K, x.V, x.G, x.Beta, x.State, chunk);
            Assert.That(MaxDiff(oc, or), Is.LessThanOrEqualTo(Tol), $"output chunk={chunk}");
            Assert.That(MaxDiff(sc, sr), Is.LessThanOrEqualTo(Tol), $"state chunk={chunk}");
        }
    }

    [Test]
    public void RecurrentFollowsTheDefinitionOnAHandComputedStep()
    {
        // One head, dk = dv = 2, two tokens, worked by hand from S ← e^g S; δ = β(v − Sᵀk); S += kδᵀ; o = Sᵀq.
        // q = k = e1 (already unit length, so the L2 norm only applies the 1e-6 eps), scale dk^-½.
        using var scope = NewDisposeScope();
        var q = tensor(new float[] { 1, 0, 1, 0 }).reshape(1, 2, 1, 2);
        var k = q.clone();
        var v = tensor(new float[] { 2, 3, 4, 5 }).reshape(1, 2, 1, 2);
        var g = tensor(new float[] { 0, MathF.Log(0.5f) }).reshape(1, 2, 1);
        var beta = tensor(new float[] { 0.5f, 1f }).reshape(1, 2, 1);
        var (o, s) = GatedDeltaRule.Recurrent(q, k, v, g, beta, null);
        double n = 1 / Math.Sqrt(1 + 1e-6), scale = 1 / Math.Sqrt(2);
        // t0: S = 0.5·n²·e1[2,3]ᵀ → row0 = (n·1, n·1.5).  o0 = n·scale·row0·n.
        double r0a = n * 1.0, r0b = n * 1.5;
        // t1: decay 0.5 → row0 = (0.5 r0a, 0.5 r0b); m = n·row0; δ = 1·(v − m); row0 += n·δ.
        double d1a = 4 - n * 0.5 * r0a, d1b = 5 - n * 0.5 * r0b;
        double r1a = 0.5 * r0a + n * d1a, r1b = 0.5 * r0b + n * d1b;
        var expected = new[] { n * scale * r0a, n * scale * r0b, n * scale * r1a, n * scale * r1b };
        var got = o.reshape(-1).data<float>().ToArray();
        for (int i = 0; i < 4; i++) Assert.That(got[i], Is.EqualTo(expected[i]).Within(1e-5), $"o[{i}]");
        Assert.That(s[0, 0, 0, 0].ToDouble(), Is.EqualTo(r1a).Within(1e-5));
        Assert.That(s[0, 0, 0, 1].ToDouble(), Is.EqualTo(r1b).Within(1e-5));
        Assert.That(s[0, 0, 1].abs().max().ToDouble(), Is.EqualTo(0).Within(1e-7), "row 1 of S is never written (k = e1)");
    }

    /// <summary>
    /// With a chunk-aligned layout every document of a packed row starts on a chunk boundary, so the packed call must
    /// compute each document exactly as running it alone: outputs, the final state (the row's last document) and the
    /// gradients of every input, to one or two fp32 ulps (see AssertWithinUlps). Row splits put starts mid-chunk, on a boundary
    /// and give rows of different aligned lengths.
    /// </summary>
    [TestCase(16, false), TestCase(64, false), TestCase(16, true), TestCase(64, true)]
    public void ChunkAlignedPackedRowEqualsDocumentsRunAloneWithGradients(int chunk, bool withInitialState)
    {
        using var scope = NewDisposeScope();
        int[][] splits = [[5, 70, 30], [48, 2, 55]];
        const int length = 105;
        var x = MakeInputs(seed: 5, batch: 2, length, keyHeads: 1, group: 2);
        var gen = new Generator(31);
        var outWeight = randn(2, length, 2, 6, generator: gen);
        var stateWeight = randn(2, 2, 8, 6, generator: gen);
        var layout = ChunkAlignedLayout.Create(splits.Select(Offsets).ToArray(), length, chunk, CPU);
        long Aligned(int[] split) => split.Sum(n => (n + chunk - 1) / chunk * chunk);
        Assert.That(layout.PaddedLength, Is.EqualTo(splits.Max(Aligned)));

        Tensor[] Leaves(Func<Tensor, Tensor> slice, Tensor? state) =>
            new[] { x.Q, x.K, x.V, x.G, x.Beta }.Select(slice).Append(state ?? zeros(1))
                .Select(t => t.detach().clone().requires_grad_(true)).ToArray();
        var packedLeaves = Leaves(t => t, x.State);
        var (packed, packedState) = GatedDeltaRule.Chunked(packedLeaves[0], packedLeaves[1], packedLeaves[2], packedLeaves[3],
            packedLeaves[4], withInitialState ? packedLeaves[5] : null, chunk, alignedLayout: layout);
        ((packed * outWeight).sum() + (packedState * stateWeight).sum()).backward();

        string[] names = ["q", "k", "v", "g", "beta"];
        for (int b = 0; b < 2; b++)
        {
            int at = 0;
            for (int d = 0; d < splits[b].Length; d++)
            {
                int len = splits[b][d];
                bool first = d == 0, last = d == splits[b].Length - 1;
                Tensor Slice(Tensor t) => t.narrow(0, b, 1).narrow(1, at, len);
                var leaves = Leaves(Slice, x.State.narrow(0, b, 1));
                var (alone, aloneState) = GatedDeltaRule.Chunked(leaves[0], leaves[1], leaves[2], leaves[3], leaves[4],
                    first && withInitialState ? leaves[5] : null, chunk);
                var loss = (alone * Slice(outWeight)).sum();
                if (last) loss = loss + (aloneState * stateWeight.narrow(0, b, 1)).sum();
                loss.backward();

                var label = $"row {b} doc {d} (len {len}, at {at})";
                TestContext.Out.WriteLine($"{label}: max |Δ| output {MaxDiff(Slice(packed), alone):E3}, grads q k v g β " +
                    string.Join(" ", Enumerable.Range(0, 5).Select(i => MaxDiff(Slice(packedLeaves[i].grad!), leaves[i].grad!).ToString("E3"))));
                AssertWithinUlps(Slice(packed), alone, "output " + label);
                if (last) AssertWithinUlps(packedState.narrow(0, b, 1), aloneState, "final state " + label);
                for (int i = 0; i < names.Length; i++)
                {
                    Assert.That(leaves[i].grad!.abs().max().ToDouble(), Is.GreaterThan(1e-4), $"non-trivial grad of {names[i]} {label}");
                    AssertWithinUlps(Slice(packedLeaves[i].grad!), leaves[i].grad!, $"grad of {names[i]} {label}");
                }
                if (first && withInitialState)
                    AssertWithinUlps(packedLeaves[5].grad!.narrow(0, b, 1), leaves[5].grad!, "grad of initialState " + label);
                at += len;
            }
        }
    }

    /// <summary>
    /// 2e-7 relative to the larger of 1 and the reference's magnitude, i.e. one or two fp32 ulps (measured: ≤ 1.2e-7,
    /// most entries bitwise equal): the packed call batches more chunks and rows per BLAS call than the document
    /// alone, and batched matmuls may round the last bit differently. Re-chunking errors are ~100× larger.
    /// </summary>
    static void AssertWithinUlps(Tensor actual, Tensor expected, string what)
    {
        var scale = Math.Max(1.0, expected.abs().max().ToDouble());
        Assert.That(MaxDiff(actual, expected), Is.LessThanOrEqualTo(2e-7 * scale), what);
    }

    static int[] Offsets(int[] split)
    {
        var offsets = new int[split.Length];
        for (int d = 1; d < split.Length; d++) offsets[d] = offsets[d - 1] + split[d - 1];
        return offsets;
    }

    [Test]
    public void ChunkAlignedLayoutRejectsMismatchedInputsAndOffsets()
    {
        using var scope = NewDisposeScope();
        var x = MakeInputs(seed: 6, batch: 1, length: 10, keyHeads: 1, group: 1);
        var layout = ChunkAlignedLayout.Create([[0, 4]], 10, 8, CPU);
        Assert.Throws<ArgumentException>(() => GatedDeltaRule.Chunked(x.Q, x.K, x.V, x.G, x.Beta, null, 4, alignedLayout: layout));
        Assert.Throws<ArgumentException>(() => GatedDeltaRule.Chunked(x.Q, x.K, x.V, x.G, x.Beta, null, 8,
            alignedLayout: ChunkAlignedLayout.Create([[0, 4], [0]], 10, 8, CPU)));
        Assert.Throws<ArgumentException>(() => ChunkAlignedLayout.Create([[1, 4]], 10, 8, CPU));
        Assert.Throws<ArgumentException>(() => ChunkAlignedLayout.Create([[0, 4, 4]], 10, 8, CPU));
        Assert.Throws<ArgumentException>(() => ChunkAlignedLayout.Create([[0, 10]], 10, 8, CPU));
    }

    [Test]
    public void ResetsChangeTheResultOnlyAfterTheStart()
    {
        // Sanity of the layout's reset itself: without it the second document would read the first one's state.
        using var scope = NewDisposeScope();
        var x = MakeInputs(seed: 5, batch: 1, length: 20, keyHeads: 1, group: 1);
        var layout = ChunkAlignedLayout.Create([[0, 12]], 20, 8, CPU);
        var (plain, _) = GatedDeltaRule.Chunked(x.Q, x.K, x.V, x.G, x.Beta, null, 8);
        var (reset, _) = GatedDeltaRule.Chunked(x.Q, x.K, x.V, x.G, x.Beta, null, 8, layout);
        Assert.That(MaxDiff(plain.narrow(1, 0, 12), reset.narrow(1, 0, 12)), Is.LessThanOrEqualTo(Tol));
        Assert.That(MaxDiff(plain.narrow(1, 12, 8), reset.narrow(1, 12, 8)), Is.GreaterThan(1e-3));
    }

    /// <summary>The oracle for packed rows: the recurrence run on each document of each row alone (the initial state,
    /// when given, for a row's first document only), outputs concatenated back in token order; the final state is
    /// that of each row's last document.</summary>
    static (Tensor Output, Tensor FinalState) RecurrentPerDocument(Tensor q, Tensor k, Tensor v, Tensor g, Tensor beta,
        Tensor? initialState, int[][] starts)
    {
        long length = q.shape[1];
        var rows = new List<Tensor>();
        var states = new List<Tensor>();
        for (var r = 0; r < starts.Length; r++)
        {
            var docs = new List<Tensor>();
            Tensor state = null!;
            for (var d = 0; d < starts[r].Length; d++)
            {
                long at = starts[r][d], len = (d + 1 < starts[r].Length ? starts[r][d + 1] : length) - at;
                Tensor Slice(Tensor t) => t.narrow(0, r, 1).narrow(1, at, len);
                var init = d == 0 ? initialState?.narrow(0, r, 1) : null;
                (var o, state) = GatedDeltaRule.Recurrent(Slice(q), Slice(k), Slice(v), Slice(g), Slice(beta), init);
                docs.Add(o);
            }
            rows.Add(cat(docs, 1));
            states.Add(state);
        }
        return (cat(rows, 0), cat(states, 0));
    }

    [Test]
    public void PrefillThenContinueEqualsOnePass()
    {
        // What the decode cache relies on: chunked over P tokens, then the remaining tokens from the returned state
        // (recurrent one at a time, or chunked as a multi-token continuation) equals one pass over everything.
        using var scope = NewDisposeScope();
        var x = MakeInputs(seed: 11, batch: 2, length: 30, keyHeads: 1, group: 3);
        var (full, fullState) = GatedDeltaRule.Chunked(x.Q, x.K, x.V, x.G, x.Beta, null, 8);
        Tensor Part(Tensor t, int s, int n) => t.narrow(1, s, n);
        var (first, state) = GatedDeltaRule.Chunked(Part(x.Q, 0, 21), Part(x.K, 0, 21), Part(x.V, 0, 21),
            Part(x.G, 0, 21), Part(x.Beta, 0, 21), null, 8);
        var (one, state1) = GatedDeltaRule.Recurrent(Part(x.Q, 21, 1), Part(x.K, 21, 1), Part(x.V, 21, 1),
            Part(x.G, 21, 1), Part(x.Beta, 21, 1), state);
        var (rest, stateEnd) = GatedDeltaRule.Chunked(Part(x.Q, 22, 8), Part(x.K, 22, 8), Part(x.V, 22, 8),
            Part(x.G, 22, 8), Part(x.Beta, 22, 8), state1, 8);
        Assert.That(MaxDiff(cat([first, one, rest], 1), full), Is.LessThanOrEqualTo(Tol));
        Assert.That(MaxDiff(stateEnd, fullState), Is.LessThanOrEqualTo(Tol));
    }

    [Test]
    public void OutputTakesTheDtypeOfV()
    {
        using var scope = NewDisposeScope();
        var x = MakeInputs(seed: 3, batch: 1, length: 9, keyHeads: 1, group: 1);
        var (o, s) = GatedDeltaRule.Chunked(x.Q.to(ScalarType.BFloat16), x.K.to(ScalarType.BFloat16),
            x.V.to(ScalarType.BFloat16), x.G, x.Beta.to(ScalarType.BFloat16), null, 4);
        Assert.That(o.dtype, Is.EqualTo(ScalarType.BFloat16));
        Assert.That(s.dtype, Is.EqualTo(ScalarType.Float32));
        var (reference, _) = GatedDeltaRule.Recurrent(x.Q.to(ScalarType.BFloat16), x.K.to(ScalarType.BFloat16),
            x.V.to(ScalarType.BFloat16), x.G, x.Beta.to(ScalarType.BFloat16), null);
        Assert.That(MaxDiff(o.to(ScalarType.Float32), reference.to(ScalarType.Float32)), Is.LessThanOrEqualTo(2e-2));
    }

    [TestCase(false), TestCase(true)]
    public void GradientsMatchTheRecurrentPath(bool packed)
    {
        using var scope = NewDisposeScope();
        var x = MakeInputs(seed: 21, batch: 1, length: 19, keyHeads: 1, group: 2);
        var gen = new Generator(4242);
        var outWeight = randn(1, 19, 2, 6, generator: gen);
        var stateWeight = randn(1, 2, 8, 6, generator: gen);
        int[][] starts = packed ? [[0, 7, 9]] : [[0]];
        var layout = packed ? ChunkAlignedLayout.Create(starts, 19, 4, CPU) : null;

        Tensor[] Grads(bool chunked)
        {
            var leaves = new[] { x.Q, x.K, x.V, x.G, x.Beta, x.State }.Select(t => t.detach().clone().requires_grad_(true)).ToArray();
            var (o, s) = chunked
                ? GatedDeltaRule.Chunked(leaves[0], leaves[1], leaves[2], leaves[3], leaves[4], leaves[5], 4, layout)
                : RecurrentPerDocument(leaves[0], leaves[1], leaves[2], leaves[3], leaves[4], leaves[5], starts);
            var loss = (o * outWeight).sum() + (s * stateWeight).sum();
            loss.backward();
            return leaves.Select(l => l.grad!).ToArray();
        }

        var gc = Grads(chunked: true);
        var gr = Grads(chunked: false);
        string[] names = ["q", "k", "v", "g", "beta", "initialState"];
        for (int i = 0; i < names.Length; i++)
        {
            Assert.That(gc[i].isfinite().all().ToBoolean(), Is.True, $"finite grad of {names[i]}");
            Assert.That(gr[i].abs().max().ToDouble(), Is.GreaterThan(1e-4), $"non-trivial grad of {names[i]}");
            Assert.That(MaxDiff(gc[i], gr[i]), Is.LessThanOrEqualTo(Tol), $"grad of {names[i]}");
        }
    }

    /// <summary>
    /// The kernels take q/k with the Hk key heads and broadcast them to the value heads: outputs, final states and
    /// gradients (q/k gradients summed over each group, as repeat_interleave's backward does) equal passing the
    /// repeat-interleaved copies, for the chunked form with and without packing and for the recurrent form.
    /// </summary>
    [TestCase(false, 3), TestCase(true, 2)]
    public void GroupedKeyHeadsEqualRepeatedKeyHeads(bool packed, int group)
    {
        using var scope = NewDisposeScope();
        var gen = new Generator(77);
        long b = 2, t = 21, hk = 2, h = hk * group, dk = 8, dv = 6;
        var q = randn(b, t, hk, dk, generator: gen);
        var k = randn(b, t, hk, dk, generator: gen);
        var v = randn(b, t, h, dv, generator: gen);
        var g = -nn.functional.softplus(randn(b, t, h, generator: gen));
        var beta = randn(b, t, h, generator: gen).sigmoid();
        var state = randn(b, h, dk, dv, generator: gen) * 0.5;
        var outWeight = randn(b, t, h, dv, generator: gen);
        int[][] starts = packed ? [[0, 5], [0, 9, 10]] : [[0], [0]];
        var layout = packed ? ChunkAlignedLayout.Create(starts, t, 8, CPU) : null;

        foreach (var chunked in new[] { true, false })
        {
            (Tensor O, Tensor S, Tensor Gq, Tensor Gk) Run(bool repeat)
            {
                var ql = q.detach().clone().requires_grad_(true);
                var kl = k.detach().clone().requires_grad_(true);
                var qin = repeat ? ql.repeat_interleave(group, 2) : ql;
                var kin = repeat ? kl.repeat_interleave(group, 2) : kl;
                var (o, s) = chunked
                    ? GatedDeltaRule.Chunked(qin, kin, v, g, beta, state, 8, layout)
                    : RecurrentPerDocument(qin, kin, v, g, beta, state, starts);
                ((o * outWeight).sum() + s.sum()).backward();
                return (o.detach(), s.detach(), ql.grad!, kl.grad!);
            }
            var grouped = Run(repeat: false);
            var repeated = Run(repeat: true);
            var form = chunked ? "chunked" : "recurrent";
            Assert.That(repeated.Gq.abs().max().ToDouble(), Is.GreaterThan(1e-3), $"{form}: non-trivial q gradient");
            Assert.That(MaxDiff(grouped.O, repeated.O), Is.LessThanOrEqualTo(Tol), $"{form} output");
            Assert.That(MaxDiff(grouped.S, repeated.S), Is.LessThanOrEqualTo(Tol), $"{form} final state");
            Assert.That(MaxDiff(grouped.Gq, repeated.Gq), Is.LessThanOrEqualTo(Tol), $"{form} q gradient");
            Assert.That(MaxDiff(grouped.Gk, repeated.Gk), Is.LessThanOrEqualTo(Tol), $"{form} k gradient");
        }
    }

    /// <summary>The heads-first entry (the layer's training path) is the same computation: bitwise the same output,
    /// final state and input gradients as <see cref="GatedDeltaRule.Chunked"/> given the same values as [B,T,H,d]
    /// views, with grouped key heads, a padded last chunk and an initial state.</summary>
    [Test]
    public void HeadsFirstEqualsChunkedBitwise()
    {
        using var scope = NewDisposeScope();
        var gen = new Generator(91);
        long b = 2, t = 21, hk = 2, h = 4, d = 8;
        // One [B, 2Hk+H, T, d] tensor, as the layer builds it: queries and keys together, then values.
        var qkv = randn(b, 2 * hk + h, t, d, generator: gen);
        var g = -nn.functional.softplus(randn(b, t, h, generator: gen));
        var beta = randn(b, t, h, generator: gen).sigmoid();
        var state = randn(b, h, d, d, generator: gen) * 0.5;
        var outWeight = randn(b, t, h, d, generator: gen);

        (Tensor O, Tensor S, Tensor Grad) Run(bool headsFirst)
        {
            var leaf = qkv.detach().clone().requires_grad_(true);
            var p = leaf.split([hk, hk, h], 1);
            var (o, s) = headsFirst
                ? GatedDeltaRule.ChunkedHeadsFirst(leaf.narrow(1, 0, 2 * hk), p[2], g, beta, state, 8)
                : GatedDeltaRule.Chunked(p[0].transpose(1, 2), p[1].transpose(1, 2), p[2].transpose(1, 2), g, beta, state, 8);
            ((o * outWeight).sum() + s.sum()).backward();
            return (o.detach(), s.detach(), leaf.grad!);
        }
        var a = Run(headsFirst: true);
        var c = Run(headsFirst: false);
        Assert.That(a.O.abs().max().ToDouble(), Is.GreaterThan(0.05), "non-trivial output");
        Assert.That(a.O.equal(c.O).all().ToBoolean(), Is.True, "output");
        Assert.That(a.S.equal(c.S).all().ToBoolean(), Is.True, "final state");
        Assert.That(a.Grad.equal(c.Grad).all().ToBoolean(), Is.True, "q/k/v gradients");
    }

    [Test]
    public void RejectsMismatchedShapes()
    {
        using var scope = NewDisposeScope();
        var x = MakeInputs(seed: 1, batch: 1, length: 4, keyHeads: 2, group: 2);
        // 3 key heads cannot be grouped onto 4 value heads (2 could: grouped q/k are accepted).
        var ex = Assert.Throws<ArgumentException>(() =>
            GatedDeltaRule.Chunked(x.Q.narrow(2, 0, 3), x.K.narrow(2, 0, 3), x.V, x.G, x.Beta, null));
        Assert.That(ex!.Message, Does.Contain("v must be"));
        Assert.Throws<ArgumentException>(() => GatedDeltaRule.Chunked(x.Q, x.K.narrow(2, 0, 2), x.V, x.G, x.Beta, null));
        Assert.Throws<ArgumentException>(() => GatedDeltaRule.Chunked(x.Q, x.K, x.V, x.G, x.Beta, zeros(1, 4, 8, 7)));
    }

    [Test]
    public void KernelsFreeTheirTemporaries()
    {
        // Only the two results may outlive a call (per-call dispose scope inside the kernels).
        using var scope = NewDisposeScope();
        var x = MakeInputs(seed: 8, batch: 1, length: 21, keyHeads: 1, group: 2);
        var layout = ChunkAlignedLayout.Create([[0, 9]], 21, 8, CPU);
        var convLayout = ChunkAlignedLayout.Create([[0, 9]], 21, 1, CPU, gap: 3);
        var convInput = randn(1, 3, 21);
        var convWeight = randn(3, 1, 4);
        // Earlier tests' unreferenced tensors would otherwise be finalised during the measurement.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        var before = Tensor.TotalCount;
        var (o1, s1) = GatedDeltaRule.Chunked(x.Q, x.K, x.V, x.G, x.Beta, x.State, 8, layout);
        var (o2, s2) = GatedDeltaRule.Recurrent(x.Q, x.K, x.V, x.G, x.Beta, x.State);
        var o3 = CausalConv.ForwardPacked(convInput, convWeight, convLayout);
        var (o4, s4) = CausalConv.Forward(convInput, convWeight);
        Assert.That(Tensor.TotalCount, Is.EqualTo(before + 7));
    }
}
