using Qwen35.Models.Config;
using Qwen35.Models.Generation;
using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Models.Tests;

/// <summary>Padding and packing give the same logits for real tokens as running each sequence alone (fp32).</summary>
public class BatchTests
{
    static Tensor LogitsAlone(long[] ids)
    {
        var model = GoldenData.Model;
        return model.Logits(model.Forward(new ModelInputs(GoldenData.Ids(ids)))).squeeze(0);
    }

    // Shared by several tests and first built inside whichever test's dispose scope runs first: detach the
    // parameters from that scope, or its end would free them under the later tests.
    static readonly Lazy<Qwen35ForCausalLM> RandomTiny = new(() =>
    {
        var model = Qwen35ForCausalLM.CreateRandom(Qwen35TextConfig.Tiny(), seed: 7);
        foreach (var p in model.parameters()) p.DetachFromDisposeScope();
        return model;
    });

    /// <summary>SequenceLosses builds fp32 logits in chunks of positions; across several chunks (and with padding)
    /// it equals the mean of −log_softmax at the targets over the whole row computed at once.</summary>
    [Test]
    public void ChunkedSequenceLossesEqualTheWholeRowLoss()
    {
        using var scope = NewDisposeScope();
        var model = RandomTiny.Value;
        var ids = randint(0, 500, [2, 1200], generator: new torch.Generator(3), dtype: ScalarType.Int64);
        var mask = ones(2, 1200, ScalarType.Int64);
        mask[1, TensorIndex.Slice(1100, null)] = 0;   // row 1 right-padded: only its first 1100 tokens count
        var losses = model.SequenceLosses(ids, mask);

        using var noGrad = no_grad();
        var logits = model.Logits(model.Forward(new ModelInputs(ids, mask))).to(ScalarType.Float32);
        var nll = -logits.narrow(1, 0, 1199).log_softmax(-1).gather(-1, ids.narrow(1, 1, 1199).unsqueeze(-1)).squeeze(-1);
        Assert.That(losses[0], Is.EqualTo(nll[0].mean().ToSingle()).Within(1e-5));
        Assert.That(losses[1], Is.EqualTo(nll[1].narrow(0, 0, 1099).mean().ToSingle()).Within(1e-5));
    }

    /// <summary>
    /// Three documents of different lengths, the middle one longer than a delta-rule chunk (64), so both the conv
    /// context and the recurrent state must reset inside and across chunks. From the document starts alone the model
    /// runs every document chunk-aligned, i.e. with exactly the chunk decomposition it has alone (and the conv as one
    /// conv1d over the documents spread apart), RoPE restarting per document, and full attention per document or,
    /// with <see cref="PackedDocuments.PerDocumentAttention"/> off (what rows of more than 64 documents get), through
    /// the block-diagonal mask: 1e-5 on both models (measured: HF init ≤ 1.8e-7, golden ≤ 4.5e-6, the rest being
    /// shape-dependent CPU rounding in attention and the MLP, amplified by the golden model's large activations).
    /// </summary>
    [TestCase(false, true)]
    [TestCase(true, true)]
    [TestCase(false, false)]
    [TestCase(true, false)]
    public void PackedRowMatchesDocumentsAlone(bool golden, bool perDocumentAttention)
    {
        const double tolerance = 1e-5;
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var model = golden ? GoldenData.Model : RandomTiny.Value;
        var seqs = GoldenData.Sequences;
        long[][] docs = [seqs[0][..23], seqs[2][..90], seqs[1][..11]];
        var ids = docs.SelectMany(d => d).ToArray();
        int[] offsets = [0, docs[0].Length, docs[0].Length + docs[1].Length];
        var documents = new PackedDocuments([offsets], [ids.Length]) { PerDocumentAttention = perDocumentAttention };
        var packed = model.Logits(model.Forward(new ModelInputs(GoldenData.Ids(ids), Documents: documents))).squeeze(0);

        var diffs = new double[docs.Length];
        for (var i = 0; i < docs.Length; i++)
        {
            var alone = model.Logits(model.Forward(new ModelInputs(GoldenData.Ids(docs[i])))).squeeze(0);
            diffs[i] = GoldenData.MaxAbsDiff(packed.narrow(0, offsets[i], docs[i].Length), alone);
            TestContext.Out.WriteLine($"document {i} (length {docs[i].Length}): max |Δlogit| = {diffs[i]:E3}, " +
                                      $"max |logit| {alone.abs().max().ToDouble():F2}");
        }
        for (var i = 0; i < docs.Length; i++) Assert.That(diffs[i], Is.LessThanOrEqualTo(tolerance), $"document {i}");
    }

    [Test]
    public void PackedRowWithoutResetsWouldDiffer()
    {
        // Guards the test above: the same row without its document starts leaks context into document 2.
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var seqs = GoldenData.Sequences;
        long[][] docs = [seqs[0][..23], seqs[2][..90]];
        var model = GoldenData.Model;
        var unpacked = model.Logits(model.Forward(new ModelInputs(GoldenData.Ids(docs[0].Concat(docs[1]).ToArray())))).squeeze(0);
        Assert.That(GoldenData.MaxAbsDiff(unpacked.narrow(0, 23, 90), LogitsAlone(docs[1])), Is.GreaterThan(1e-2));
    }

    [Test]
    public void RightPaddedBatchMatchesUnpadded()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var seqs = GoldenData.Sequences;
        var length = seqs.Max(s => s.Length);
        var ids = new long[seqs.Length * length];
        var mask = new long[seqs.Length * length];
        for (var r = 0; r < seqs.Length; r++)
            for (var t = 0; t < length; t++)
            {
                var real = t < seqs[r].Length;
                ids[r * length + t] = real ? seqs[r][t] : 511;   // pad id: anything, it must not matter
                mask[r * length + t] = real ? 1 : 0;
            }
        var model = GoldenData.Model;
        var logits = model.Logits(model.Forward(new ModelInputs(tensor(ids).view(seqs.Length, length),
            AttentionMask: tensor(mask).view(seqs.Length, length))));
        for (var r = 0; r < seqs.Length; r++)
        {
            var diff = GoldenData.MaxAbsDiff(logits[r].narrow(0, 0, seqs[r].Length), LogitsAlone(seqs[r]));
            TestContext.Out.WriteLine($"row {r}: max |Δlogit| = {diff:E3}");
            Assert.That(diff, Is.LessThanOrEqualTo(1e-5), $"row {r}");
            Assert.That(logits[r].isfinite().all().item<bool>(), Is.True, "pad positions stay finite");
        }
    }

    [Test]
    public void LeftPaddedCachedGenerationMatchesUnpadded()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var model = GoldenData.Model;
        long[] a = GoldenData.Sequences[0][..20], b = GoldenData.Sequences[1][..33];
        var length = b.Length;
        var pad = length - a.Length;
        var ids = tensor(Enumerable.Repeat(0L, pad).Concat(a).Concat(b).ToArray()).view(2, length);
        var mask = tensor(Enumerable.Repeat(0L, pad).Concat(Enumerable.Repeat(1L, a.Length + b.Length)).ToArray()).view(2, length);
        long[] nextA = [5, 77, 301], nextB = [9, 8, 400];

        using var cache = new ModelCache(model.Config);
        var rows = new List<Tensor> { model.Logits(model.Forward(new ModelInputs(ids, mask, Cache: cache))).select(1, -1) };
        for (var s = 0; s < nextA.Length; s++)
        {
            // Only the new column of the mask is passed: the cache remembers the earlier ones.
            var step = tensor(new[] { nextA[s], nextB[s] }).view(2, 1);
            rows.Add(model.Logits(model.Forward(new ModelInputs(step, ones(2, 1, dtype: ScalarType.Int64), Cache: cache))).select(1, -1));
        }
        var batched = stack(rows, 1);                                                      // [2, 4, V]

        foreach (var (row, prompt, next) in new[] { (0, a, nextA), (1, b, nextB) })
        {
            var full = prompt.Concat(next).ToArray();
            var alone = LogitsAlone(full).narrow(0, prompt.Length - 1, next.Length + 1);
            var diff = GoldenData.MaxAbsDiff(batched[row], alone);
            TestContext.Out.WriteLine($"row {row}: max |Δlogit| = {diff:E3}");
            Assert.That(diff, Is.LessThanOrEqualTo(1e-4), $"row {row}");
        }
    }

    [Test]
    public void ChunkedContinuationMatchesFullForward()
    {
        // Prefill, then a multi-token continuation (chunked path with the cached state), then single tokens.
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var model = GoldenData.Model;
        var seq = GoldenData.Sequences[2];
        using var cache = new ModelCache(model.Config);
        var parts = new List<Tensor>();
        foreach (var (start, count) in new[] { (0, 50), (50, 70), (120, 1), (121, 1), (122, 8) })
            parts.Add(model.Logits(model.Forward(new ModelInputs(GoldenData.Ids(seq[start..(start + count)]), Cache: cache))).squeeze(0));
        var diff = GoldenData.MaxAbsDiff(cat(parts, 0), GoldenData.Expected("seq2.logits"));
        TestContext.Out.WriteLine($"max |Δlogit| = {diff:E3}");
        Assert.That(diff, Is.LessThanOrEqualTo(1e-4));
    }

    /// <summary>
    /// Training's layer-at-a-time (checkpointed) forward builds its context in the same place as Forward: the hidden
    /// states its loss callback receives are bitwise Forward's, on packed rows with right padding. The same rows as a
    /// padded batch of whole rows, and as packed rows with padding, must give real-token outputs equal to the
    /// documents run alone.
    /// </summary>
    [Test]
    public void CheckpointedForwardSeesExactlyForwardsHiddenStates()
    {
        using var scope = NewDisposeScope();
        var model = GoldenData.Model;
        var ids = tensor(GoldenData.Sequences[1][..40]).view(2, 20);
        var inputs = new ModelInputs(ids, Documents: new PackedDocuments([[0, 7], [0]], [20, 15]));
        Tensor expected;
        using (no_grad()) expected = model.Forward(inputs);
        Tensor? seen = null;
        foreach (var checkpointing in new[] { true, false })
        {
            model.ForwardBackward(inputs, hidden =>
            {
                seen = hidden.detach().clone().DetachFromDisposeScope();   // outlives the model's scopes
                var loss = hidden.sum();
                if (hidden.requires_grad) loss.backward();   // checkpointing needs the gradient at the top
                return loss.detach();
            }, new TrainingForward(checkpointing));
            Assert.That(GoldenData.MaxAbsDiff(seen!, expected), Is.Zero, $"checkpointing {checkpointing}");
        }
        foreach (var p in model.parameters()) p.grad = null;   // the shared golden model stays as loaded
    }

    [Test]
    public void DocumentsDescribePaddingAndRejectContradictions()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var model = GoldenData.Model;
        var seqs = GoldenData.Sequences;
        long[] a = seqs[0][..9], b = seqs[1][..14], c = seqs[2][..12];
        // Row 0: a, c packed, then 3 pad tokens; row 1: b then 10 pad tokens.
        var ids = tensor(a.Concat(c).Concat(new long[3]).Concat(b).Concat(new long[10]).ToArray()).view(2, 24);
        var docs = new PackedDocuments([[0, 9], [0]], [21, 14]);
        var logits = model.Logits(model.Forward(new ModelInputs(ids, Documents: docs)));
        Assert.That(GoldenData.MaxAbsDiff(logits[0].narrow(0, 0, 9), LogitsAlone(a)), Is.LessThanOrEqualTo(1e-5));
        Assert.That(GoldenData.MaxAbsDiff(logits[0].narrow(0, 9, 12), LogitsAlone(c)), Is.LessThanOrEqualTo(1e-5));
        Assert.That(GoldenData.MaxAbsDiff(logits[1].narrow(0, 0, 14), LogitsAlone(b)), Is.LessThanOrEqualTo(1e-5));

        Assert.Throws<ArgumentException>(() => model.Forward(new ModelInputs(ids, Documents: new PackedDocuments([[0, 9]], [21]))), "row count");
        Assert.Throws<ArgumentException>(() => model.Forward(new ModelInputs(ids, Documents: new PackedDocuments([[0, 22], [0]], [21, 14]))), "start past the real tokens");
        Assert.Throws<ArgumentException>(() => model.Forward(new ModelInputs(ids, Documents: new PackedDocuments([[1], [0]], [24, 14]))), "first start not 0");
        Assert.Throws<ArgumentException>(() => model.Forward(new ModelInputs(ids, ones(2, 24, dtype: ScalarType.Int64), Documents: docs)), "two padding descriptions");
    }

    [Test]
    public void PaddedBatchLossesEqualGoldenLosses()
    {
        // Rows 0 and 1 right- and left-padded to the longest sequence: SequenceLosses must ignore every pad pair.
        using var scope = NewDisposeScope();
        var seqs = GoldenData.Sequences;
        var expected = GoldenData.ExpectedJson().GetProperty("losses").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        var length = seqs[2].Length;
        foreach (var left in new[] { false, true })
        {
            var rows = seqs.Select(s =>
            {
                var pad = Enumerable.Repeat(0L, length - s.Length);
                return left ? pad.Concat(s).ToArray() : s.Concat(pad).ToArray();
            }).ToArray();
            var masks = seqs.Select(s =>
            {
                var pad = Enumerable.Repeat(0L, length - s.Length);
                var real = Enumerable.Repeat(1L, s.Length);
                return left ? pad.Concat(real).ToArray() : real.Concat(pad).ToArray();
            }).ToArray();
            var losses = GoldenData.Model.SequenceLosses(tensor(rows.SelectMany(r => r).ToArray()).view(3, length),
                tensor(masks.SelectMany(r => r).ToArray()).view(3, length));
            for (var i = 0; i < 3; i++)
                Assert.That(losses[i], Is.EqualTo(expected[i]).Within(1e-5), $"{(left ? "left" : "right")} padding, row {i}");
        }
    }
}
