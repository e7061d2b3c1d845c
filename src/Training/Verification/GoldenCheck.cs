using Qwen35.Lora;
using Qwen35.Models;
using Qwen35.Models.Generation;
using Qwen35.Training.Loop;
using TorchSharp;
using static Qwen35.Training.Verification.GoldenBounds;
using static TorchSharp.torch;

namespace Qwen35.Training.Verification;

/// <summary>One comparison against the reference: the number measured, the bound it must not exceed, and what the
/// number is (so a reader of the report knows whether 3e-5 is a max-abs logit error or a relative L2).</summary>
public sealed record CheckResult(string Name, string Measure, double Value, double Bound)
{
    public bool Passed => !double.IsNaN(Value) && Value <= Bound;
}

/// <param name="GoldenDir">a reference set laid out like tests/fixtures/qwen35-tiny-a (produced by Hugging Face).</param>
/// <param name="Tf32">on CUDA: let cuBLAS/cuDNN round fp32 matmul and conv inputs to TF32, as training does.</param>
public sealed record GoldenCheckOptions(string GoldenDir, Device Device, ScalarType Dtype, bool Tf32 = false);

/// <summary>
/// Runs this build's model, LoRA and training-loss path on a device and compares them with a Hugging Face reference
/// set: logits and losses of every sequence, cached decoding, packed rows, the PEFT adapter's logits and loss, and
/// the adapter gradients through the training loss (with and without activation checkpointing), and a short training
/// run against the same run in fp32 on the CPU. It answers "does
/// this libtorch on this GPU compute what transformers computes?" without the test suite or the .NET SDK.
/// <para>
/// Exact mode (fp32, no TF32) compares with the reference values using <see cref="GoldenBounds.Exact"/>, the bounds
/// the golden tests use too. Reduced precision (bf16 weights, or fp32 with TF32 on CUDA) cannot meet those: on this
/// random model bf16 execution alone moves logits by several percent and single gradient tensors by 10-40%. There
/// the logits are compared with the same weights rounded to the run's dtype and executed in fp32 on the CPU (which
/// separates execution error, what this code controls, from the weight rounding any bf16 model has), and losses, the
/// adapter's effect and the whole adapter gradient with the reference, with <see cref="GoldenBounds.Reduced"/> (the
/// bounds of Bf16Tests and GoldenLoraTests' bf16 test). TF32 keeps 10 explicit mantissa bits against bf16's 7, so
/// it must stay well inside the same bounds. Every measure is one of <see cref="Comparison"/>.
/// </para>
/// </summary>
public static class GoldenCheck
{
    public static bool IsExact(GoldenCheckOptions o) =>
        o.Dtype == ScalarType.Float32 && !(o.Tf32 && o.Device.type == DeviceType.CUDA);

    public static IReadOnlyList<CheckResult> Run(GoldenCheckOptions o, TextWriter log)
    {
        using var golden = GoldenReference.Open(o.GoldenDir);
        using var scope = NewDisposeScope();   // temporaries of the comparisons below
        var exact = IsExact(o);
        var results = new List<CheckResult>();
        void Add(string name, string measure, double value, double bound)
        {
            var r = new CheckResult(name, measure, value, bound);
            results.Add(r);
            log.WriteLine($"  {(r.Passed ? "ok  " : "FAIL")} {r.Name,-26} {r.Measure,-30} {r.Value,10:E3}  (bound {r.Bound:E1})");
        }

        var cuda = o.Device.type == DeviceType.CUDA;
        var (matmulTf32, cudnnTf32) = cuda ? (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) : (false, false);
        try
        {
            if (cuda) (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) = (o.Tf32, o.Tf32);
            Compare(o, golden, exact, Add, log);
        }
        finally
        {
            // Process-wide switches: leave them as the caller had them (training turns TF32 on for itself).
            if (cuda) (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) = (matmulTf32, cudnnTf32);
        }
        return results;
    }

    static void Compare(GoldenCheckOptions o, GoldenReference golden, bool exact, Action<string, string, double, double> add, TextWriter log)
    {
        var (model, report) = Qwen35ForCausalLM.FromPretrained(o.GoldenDir, o.Dtype, o.Device);
        using var ownedModel = model;
        log.WriteLine($"verify: {o.GoldenDir} on {o.Device}, {o.Dtype}{(o.Tf32 ? " + TF32" : "")}, " +
                      $"{(exact ? "exact" : "reduced-precision")} bounds; {report}");
        using var ours = Compute(model, golden, o.GoldenDir, o.Device);

        if (exact)
        {
            for (var i = 0; i < golden.Sequences.Length; i++)
                add($"seq{i} logits", "max |Δlogit|", Comparison.MaxAbsDiff(ours.Logits[i], golden.Tensor($"seq{i}.logits")), Exact.Logits);
            add("losses (all sequences)", "max |Δloss|", Comparison.MaxAbsDiff(ours.Losses, golden.Losses), Exact.Loss);
            add("cached decode logits", "max |Δlogit|", Comparison.MaxAbsDiff(ours.DecodeLogits, golden.Tensor("seq0.greedy.decode_logits")), Exact.Logits);
            add("greedy tokens", "tokens differing", golden.GreedyTokens.Where((t, k) => ours.Greedy[k] != t).Count(), Exact.GreedyTokensDiffering);
            add("packed row, offsets", "max |Δlogit| vs alone", Comparison.MaxAbsDiff(ours.PackedWithOffsets, ours.Alone), Exact.Logits);
            add("packed row, mask only", "max |Δlogit| vs alone", Comparison.MaxAbsDiff(ours.PackedMaskOnly, ours.Alone), Exact.Logits);
            add("LoRA logits", "max |Δlogit|", Comparison.MaxAbsDiff(ours.LoraLogits, golden.Tensor($"lora.seq{golden.LoraSequence}.logits")), Exact.Logits);
            add("LoRA loss", "|Δloss|", Comparison.LossGap(ours.LoraLoss, golden.LoraLoss), Exact.Loss);
            foreach (var (grads, name) in new[] { (ours.Grads, "LoRA grads"), (ours.GradsCheckpointed, "LoRA grads, checkpointed") })
                add(name, Exact.Gradients.Measure,
                    grads.Select(g => Comparison.AllcloseExcess(g.Value, golden.Gradient(g.Key), Exact.Gradients)).Max(), Tolerance.ExcessBound);
            TrainingChecks(o, golden, exact, add);
            return;
        }

        // Reduced precision: the same weights, rounded to the run's dtype, executed in fp32 on the CPU.
        var (rounded, _) = Qwen35ForCausalLM.FromPretrained(o.GoldenDir, ScalarType.Float32, CPU);
        using var ownedRounded = rounded;
        RoundLike(rounded, model, o.Dtype);
        using var reference = Compute(rounded, golden, o.GoldenDir, CPU);
        for (var i = 0; i < golden.Sequences.Length; i++)
        {
            add($"seq{i} logits", "rel L2 vs rounded fp32", Comparison.RelL2(ours.Logits[i], reference.Logits[i]), Reduced.LogitsRelL2);
            add($"seq{i} logits", "argmax disagreement", Comparison.ArgmaxDisagreement(ours.Logits[i], reference.Logits[i]), Reduced.ArgmaxDisagreement);
        }
        add("losses (all sequences)", "max |Δloss| vs reference", Comparison.MaxAbsDiff(ours.Losses, golden.Losses), Reduced.Loss);
        add("cached decode logits", "rel L2 vs rounded fp32", Comparison.RelL2(ours.DecodeLogits, reference.DecodeLogits), Reduced.LogitsRelL2);
        add("packed row, offsets", "rel L2 vs alone", Comparison.RelL2(ours.PackedWithOffsets, ours.Alone), Reduced.PackedRelL2);
        add("packed row, mask only", "rel L2 vs alone", Comparison.RelL2(ours.PackedMaskOnly, ours.Alone), Reduced.PackedRelL2);
        add("LoRA logits", "rel L2 vs rounded fp32", Comparison.RelL2(ours.LoraLogits, reference.LoraLogits), Reduced.LoraLogitsRelL2);
        using (var goldenEffect = golden.Tensor($"lora.seq{golden.LoraSequence}.logits") - golden.Tensor($"seq{golden.LoraSequence}.logits"))
        using (var effect = ours.LoraLogits - ours.Logits[golden.LoraSequence])
            add("LoRA effect (LoRA - base)", "1 - cosine vs reference", Comparison.CosineGap(effect, goldenEffect), Reduced.LoraEffectCosineGap);
        add("LoRA loss", "|Δloss| vs reference", Comparison.LossGap(ours.LoraLoss, golden.LoraLoss), Reduced.LoraLoss);
        foreach (var (grads, name) in new[] { (ours.Grads, "LoRA grads"), (ours.GradsCheckpointed, "LoRA grads, checkpointed") })
        {
            using var mine = cat(grads.Keys.Select(k => grads[k].flatten()).ToArray());
            using var theirs = cat(grads.Keys.Select(k => golden.Gradient(k).flatten()).ToArray());
            add(name, "1 - cosine vs reference", Comparison.CosineGap(mine, theirs), Reduced.GradientCosineGap);
        }
        TrainingChecks(o, golden, exact, add);
    }

    /// <summary>
    /// A short LoRA training run on the device (fresh rank-4 adapter on every linear projection, the three reference
    /// sequences packed in one row, checkpointing, clipping, AdamW) against the same run in fp32 on the CPU with the
    /// weights rounded like the device's. Single-step gradients are checked above against Hugging Face; this checks
    /// that the optimizer loop on the device follows them, step after step, in the run's precision.
    /// </summary>
    static void TrainingChecks(GoldenCheckOptions o, GoldenReference golden, bool exact, Action<string, string, double, double> add)
    {
        var ours = TrainingLosses(o.GoldenDir, golden, o.Dtype, o.Device);
        var reference = TrainingLosses(o.GoldenDir, golden, o.Dtype, CPU, referenceInFp32: true);
        add($"training, {TrainingSteps} steps", "max |Δloss|/loss vs CPU fp32", Comparison.MaxRelativeDiff(ours, reference),
            exact ? Exact.TrainingLoss : Reduced.TrainingLoss);
        add($"training, {TrainingSteps} steps", "final / first loss", Comparison.FinalOverFirst(ours), GoldenBounds.TrainingLossRatio);
    }

    const int TrainingSteps = 20;

    /// <summary>Per-step losses of the short training run; with <paramref name="referenceInFp32"/> the model runs in
    /// fp32 with its weights rounded to <paramref name="dtype"/> (the reference for a reduced-precision run).</summary>
    static double[] TrainingLosses(string dir, GoldenReference golden, ScalarType dtype, Device device, bool referenceInFp32 = false)
    {
        var (model, _) = Qwen35ForCausalLM.FromPretrained(dir, referenceInFp32 ? ScalarType.Float32 : dtype, device);
        using var owned = model;
        if (referenceInFp32 && dtype != ScalarType.Float32)
        {
            var (run, _) = Qwen35ForCausalLM.FromPretrained(dir, dtype, CPU);
            using (run) RoundLike(model, run, dtype);
        }
        LoraInjector.Apply(model, new LoraOptions { Rank = 4, Alpha = 8, TargetModules = LoraTargets.AllLinear }, seed: 7);
        model.train();
        var parameters = Session.Trainable(model).Select(p => p.Param).ToList();
        using var optimizer = torch.optim.AdamW(parameters, lr: 1e-2, weight_decay: 0);
        var docs = golden.Sequences;
        var ids = docs.SelectMany(d => d).ToArray();
        var batch = new MicroBatch
        {
            Rows = 1, Length = ids.Length, InputIds = ids, Labels = ids,
            Documents = new PackedDocuments([docs.Select((_, i) => docs.Take(i).Sum(d => d.Length)).ToArray()], [ids.Length]),
        };
        var losses = new double[TrainingSteps];
        for (var step = 0; step < TrainingSteps; step++)
        {
            using var scope = NewDisposeScope();
            losses[step] = LossComputation.ForwardBackward(model, batch.ToTensors(device), 1.0 / batch.TargetCount, true, step)
                           / batch.TargetCount;
            GradientClipping.ClipOnDevice(parameters, 1.0);
            optimizer.step();
            optimizer.zero_grad();
        }
        return losses;
    }

    /// <summary>Everything the checks compare, copied to the CPU in fp32.</summary>
    sealed class Outputs : IDisposable
    {
        public List<Tensor> Logits { get; } = [];
        public List<double> Losses { get; } = [];
        public Tensor DecodeLogits { get; set; } = null!;
        public long[] Greedy { get; set; } = [];
        public Tensor Alone { get; set; } = null!;
        public Tensor PackedWithOffsets { get; set; } = null!;
        public Tensor PackedMaskOnly { get; set; } = null!;
        public Tensor LoraLogits { get; set; } = null!;
        public double LoraLoss { get; set; }
        /// <summary>Adapter gradients keyed by the reference's (PEFT) key.</summary>
        public Dictionary<string, Tensor> Grads { get; set; } = [];
        public Dictionary<string, Tensor> GradsCheckpointed { get; set; } = [];

        public void Dispose()
        {
            foreach (var t in Logits.Concat([DecodeLogits, Alone, PackedWithOffsets, PackedMaskOnly, LoraLogits])
                         .Concat(Grads.Values).Concat(GradsCheckpointed.Values))
                t?.Dispose();
        }
    }

    /// <summary>Runs every computation the checks need on <paramref name="model"/> (which gets the reference adapter
    /// attached on the way).</summary>
    static Outputs Compute(Qwen35ForCausalLM model, GoldenReference golden, string dir, Device device)
    {
        var o = new Outputs();
        model.eval();
        using (no_grad())
        {
            foreach (var seq in golden.Sequences)
            {
                using var scope = NewDisposeScope();
                var ids = Ids(seq, device);
                o.Logits.Add(Host(model.Logits(model.Forward(new ModelInputs(ids))).squeeze(0)));
                o.Losses.Add(model.SequenceLosses(ids)[0]);
            }
            Decode(model, golden, device, o);
            Packed(model, golden, device, o);
        }

        LoraInjector.LoadAdapter(model, Path.Combine(dir, "adapter"));
        using (no_grad())
        using (NewDisposeScope())
        {
            var ids = Ids(golden.Sequences[golden.LoraSequence], device);
            o.LoraLogits = Host(model.Logits(model.Forward(new ModelInputs(ids))).squeeze(0));
            o.LoraLoss = model.SequenceLosses(ids)[0];
        }
        model.train();
        o.Grads = Gradients(model, golden, device, checkpointing: false);
        o.GradsCheckpointed = Gradients(model, golden, device, checkpointing: true);
        return o;
    }

    /// <summary>Prefill sequence 0 into a cache, then decode the reference's greedy tokens one at a time (teacher
    /// forced, so every step sees the reference's prefix even where a reduced-precision argmax would differ).</summary>
    static void Decode(Qwen35ForCausalLM model, GoldenReference golden, Device device, Outputs o)
    {
        using var scope = NewDisposeScope();
        using var cache = new ModelCache(model.Config);
        var prompt = Ids(golden.Sequences[0][..golden.PromptLength], device);
        var last = model.Logits(model.Forward(new ModelInputs(prompt, Cache: cache))).select(1, -1);
        var chosen = new List<Tensor> { last.argmax(-1) };
        var decodeRows = new List<Tensor>();
        foreach (var token in golden.GreedyTokens)
        {
            last = model.Logits(model.Forward(new ModelInputs(Ids([token], device), Cache: cache))).select(1, -1);
            decodeRows.Add(last.squeeze(0));
            chosen.Add(last.argmax(-1));
        }
        o.DecodeLogits = Host(stack(decodeRows));
        o.Greedy = cat(chosen).cpu().data<long>().ToArray();
    }

    /// <summary>All reference sequences packed into one row, with the host-side offsets (per-document attention,
    /// chunk-aligned delta rule) and without (masked fallback); each document's logits must equal its run alone.</summary>
    static void Packed(Qwen35ForCausalLM model, GoldenReference golden, Device device, Outputs o)
    {
        using var scope = NewDisposeScope();
        var docs = golden.Sequences;
        var offsets = new int[docs.Length];
        for (var i = 1; i < docs.Length; i++) offsets[i] = offsets[i - 1] + docs[i - 1].Length;
        var ids = Ids(docs.SelectMany(d => d).ToArray(), device);
        o.Alone = cat(o.Logits).DetachFromDisposeScope();
        var documents = new PackedDocuments([offsets], [docs.Sum(d => d.Length)]);
        o.PackedWithOffsets = Host(model.Logits(model.Forward(new ModelInputs(ids, Documents: documents))).squeeze(0));
        o.PackedMaskOnly = Host(model.Logits(model.Forward(new ModelInputs(ids, Documents: documents with { PerDocumentAttention = false }))).squeeze(0));
    }

    /// <summary>The training path (chunked cross-entropy, optional checkpointing) on the reference sequence with every
    /// token trained: the gradient of the mean loss for every adapter tensor, keyed like the reference file.</summary>
    static Dictionary<string, Tensor> Gradients(Qwen35ForCausalLM model, GoldenReference golden, Device device, bool checkpointing)
    {
        using var scope = NewDisposeScope();
        var byName = Session.Trainable(model).ToDictionary(p => p.Name, p => p.Param);
        foreach (var p in byName.Values) p.grad = null;
        var ids = golden.Sequences[golden.LoraSequence];
        var batch = new MicroBatch { Rows = 1, Length = ids.Length, InputIds = ids, Labels = ids };
        LossComputation.ForwardBackward(model, batch.ToTensors(device), 1.0 / batch.TargetCount, checkpointing, 0);
        var result = new Dictionary<string, Tensor>();
        foreach (var key in golden.GradientKeys)
        {
            var name = key.StartsWith("base_model.model.", StringComparison.Ordinal) ? key["base_model.model.".Length..] : key;
            if (!byName.TryGetValue(name, out var p) || p.grad is null)
                throw new UserInputException($"{golden.GradientsPath}: gradient '{key}' has no trainable adapter tensor '{name}'");
            result[key] = Host(p.grad);
        }
        foreach (var p in byName.Values) p.grad = null;
        return result;
    }

    /// <summary>Rounds each fp32 weight of <paramref name="reference"/> to <paramref name="dtype"/> wherever the run
    /// model keeps that weight in <paramref name="dtype"/> (A_log, dt_bias and the gated norm stay fp32 in both).</summary>
    static void RoundLike(Qwen35ForCausalLM reference, Qwen35ForCausalLM run, ScalarType dtype)
    {
        if (dtype == ScalarType.Float32) return;
        var dtypes = run.named_parameters().ToDictionary(p => p.name, p => p.parameter.dtype);
        using var noGrad = no_grad();
        foreach (var (name, p) in reference.named_parameters())
            if (dtypes[name] == dtype)
            {
                using var r = p.to(dtype).to(ScalarType.Float32);
                p.copy_(r);
            }
    }

    /// <summary>A copy on the CPU in fp32 that outlives the caller's dispose scope.</summary>
    static Tensor Host(Tensor t) => t.detach().cpu().to(ScalarType.Float32).clone().DetachFromDisposeScope();

    static Tensor Ids(long[] ids, Device device) => tensor(ids, dtype: ScalarType.Int64, device: device).unsqueeze(0);
}
