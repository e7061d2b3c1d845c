using Qwen35.Export.Gguf;
using Qwen35.Lora;
using Qwen35.Models;
using static TorchSharp.torch;

namespace Qwen35.Export.LlamaCpp;

/// <summary>
/// `trainer gguf --check`: runs a written GGUF (and, for a LoRA GGUF, the base GGUF it is applied to) in llama.cpp on
/// a few sequences and compares it with the trainer's own fp32 forward of the same model and adapter.
/// <para>Bounds (docs/gguf.md "--check"): per sequence, max |llama.cpp − trainer| over every logit ≤
/// <see cref="FloorRelative"/> · max(1, max |trainer logit|) + <see cref="Factor"/> · R, where R is what the file's storage
/// rounding alone does: the trainer's forward with its weights replaced by exactly the values the file stores (F16/BF16
/// round to nearest even, Q8_0 dequantized blocks, the LoRA factors in F16 for an F16 LoRA file) against the trainer
/// in fp32. R is 0 for F32 files. Argmax may disagree with the trainer's fp32 run at no more than
/// <see cref="ArgmaxFlipFactor"/> × the positions where the trainer's rounded run disagrees, plus <see cref="ArgmaxSlack"/>
/// of the positions. The mean next-token losses are printed, not bounded: |Δloss| ≤ 2 · max
/// |Δlogit| (log-softmax moves by at most twice the largest logit change), so the logit bound covers them.</para>
/// </summary>
public static class GgufCheck
{
    /// <summary>The F32 floor, relative to the logits' size: fp32 sums in another order (llama.cpp's kernels) differ by
    /// a few 1e-5 on the golden model and 4.9e-4 on builtin:tiny's first positions (docs/gguf.md).</summary>
    public const double FloorRelative = 1e-3;

    /// <summary>llama.cpp also rounds the matmul inputs to the weight type on CPU: measured 1.0-2.3 × R (docs/gguf.md).</summary>
    public const double Factor = 3;

    /// <summary>Near-ties flip under rounding. llama.cpp rounds the activations too (about twice the perturbation of the
    /// weights' rounding alone), so it may flip <see cref="ArgmaxFlipFactor"/> times as many positions as the trainer's
    /// rounded run, plus this share of all positions.</summary>
    public const double ArgmaxSlack = 0.05;

    public const double ArgmaxFlipFactor = 2;

    /// <summary>The fewest positions whose argmax must agree with the trainer's fp32 run.</summary>
    public static int MinArgmaxAgree(int trainerRoundedAgree, int positions) =>
        (int)Math.Ceiling(positions - ArgmaxFlipFactor * (positions - trainerRoundedAgree) - ArgmaxSlack * positions);

    /// <summary>
    /// Runs the check. <paramref name="gguf"/> is the model file (the export itself, or the base for a LoRA file);
    /// <paramref name="lora"/> the LoRA GGUF applied at scale 1 and its type. <paramref name="loadFp32"/> loads the
    /// trainer's model in fp32 on the CPU with its adapter attached (unmerged); it is called after llama.cpp is done
    /// (only one of the two models is in memory at a time) and the model is disposed here.
    /// </summary>
    public static GgufCheckReport Run(string gguf, (string Path, GgufType Type)? lora, Func<Qwen35ForCausalLM> loadFp32,
        IReadOnlyList<long[]> sequences, int threads)
    {
        var llama = LlamaCppRunner.Logits(gguf, lora is { } l ? (l.Path, 1f) : null, sequences, threads, out var fileType);
        var type = TypeOf(fileType, gguf);

        float[][][] trainer, rounded;
        using (var model = loadFp32())
        {
            if (model.Config.VocabSize != llama[0][0].Length)
                throw new UserInputException($"{gguf}: a vocabulary of {llama[0][0].Length} tokens, the trainer's model has {model.Config.VocabSize}; is it this model's GGUF?");
            trainer = sequences.Select(s => Logits(model, s)).ToArray();
            var roundsLora = lora is { Type: not GgufType.F32 };
            rounded = type == GgufType.F32 && !roundsLora ? trainer : RoundLikeTheFile(model, type, lora?.Type, sequences);
        }

        var rows = new List<GgufCheckRow>();
        for (var s = 0; s < sequences.Count; s++)
        {
            var scale = Math.Max(1, trainer[s].Max(row => row.Max(MathF.Abs)));
            var r = LlamaCppRunner.MaxAbsDiff(rounded[s], trainer[s]);
            rows.Add(new GgufCheckRow(s, sequences[s].Length, LlamaCppRunner.MaxAbsDiff(llama[s], trainer[s]), r,
                FloorRelative * scale + Factor * r, Agree(llama[s], trainer[s]), Agree(rounded[s], trainer[s]),
                MeanLoss(trainer[s], sequences[s]), MeanLoss(llama[s], sequences[s])));
        }
        return new GgufCheckReport(type, lora?.Type, rows);
    }

    /// <summary>The <c>general.file_type</c> of a file this exporter can write; anything else cannot be reproduced on
    /// the trainer's side.</summary>
    static GgufType TypeOf(uint? fileType, string gguf) =>
        Enum.GetValues<GgufType>().Where(t => t.FileType() == fileType).Cast<GgufType?>().FirstOrDefault()
        ?? throw new UserInputException($"{gguf}: general.file_type {fileType?.ToString() ?? "(none)"} is not one --check reproduces ({string.Join(", ", OptionNames.Names<GgufType>())})");

    /// <summary>The trainer's logits after replacing its weights by what the file stores: for a merged file the adapters
    /// are merged first, then every matrix the file does not keep in F32 is rounded; for a LoRA file the base is rounded
    /// as the base file stores it and the factors as the LoRA file does. The model is changed.</summary>
    static float[][][] RoundLikeTheFile(Qwen35ForCausalLM model, GgufType type, GgufType? loraType, IReadOnlyList<long[]> sequences)
    {
        using (var scope = NewDisposeScope())
        using (no_grad())
        {
            if (loraType is null) LoraMerge.Merge(model);
            var c = model.Config;
            var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter, StringComparer.Ordinal);
            foreach (var plan in Qwen35GgufTensors.Plan(model, type).Where(p => p.Info.Type != GgmlType.F32))
                parameters[plan.HfName].copy_(StoredValues(plan, parameters[plan.HfName], c));
            if (loraType == GgufType.F16)
                foreach (var (name, p) in parameters)
                    if (name.Contains(".lora_A.", StringComparison.Ordinal) || name.Contains(".lora_B.", StringComparison.Ordinal))
                        p.copy_(p.to(ScalarType.Float16).to(ScalarType.Float32));
        }
        return sequences.Select(s => Logits(model, s)).ToArray();
    }

    /// <summary>The values a matrix of <paramref name="plan"/> holds in the file, back in the model's layout.</summary>
    public static Tensor StoredValues(GgufTensorPlan plan, Tensor parameter, Models.Config.Qwen35TextConfig c)
    {
        switch (plan.Info.Type)
        {
            case GgmlType.F16: return parameter.to(ScalarType.Float16).to(ScalarType.Float32);
            case GgmlType.Bf16: return parameter.to(ScalarType.BFloat16).to(ScalarType.Float32);
            case GgmlType.Q8_0:
                // Q8_0 blocks run along the file's rows, so the round trip is done in the file's layout and undone after.
                var dq = Q8RoundTrip(Qwen35GgufTensors.Values(plan, parameter, c));
                var nk = c.LinearNumKeyHeads;
                var r = c.LinearNumValueHeads / nk;
                // The reorder's inverse is the same reshuffle with the roles of nk and r swapped.
                return (plan.Transform switch
                {
                    ValueTransform.None => dq,
                    ValueTransform.ReorderRows => Qwen35GgufTensors.ReorderRows(dq, plan.ReorderStart, r, nk, plan.HeadSize),
                    ValueTransform.ReorderColumns => Qwen35GgufTensors.ReorderRows(dq.t(), plan.ReorderStart, r, nk, plan.HeadSize).t(),
                    _ => throw new InvalidOperationException($"{plan.HfName}: {plan.Transform} on a quantized matrix"),
                }).reshape(parameter.shape);
            default: throw new InvalidOperationException($"{plan.HfName}: no rounding for {plan.Info.Type}");
        }
    }

    /// <summary>Q8_0 quantize + dequantize along the last dim, as GgufEncoding writes it and ggml reads it: d = max|x| / 127,
    /// q = round(x · (1/d)) half away from zero, value = q · F16(d).</summary>
    public static Tensor Q8RoundTrip(Tensor x)
    {
        var blocks = x.reshape(-1, GgufTypes.Q8Block);
        var d = blocks.abs().amax([-1], keepdim: true) / 127f;
        var id = where(d > 0, 1f / d, zeros_like(d));
        var v = blocks * id;
        var a = v.abs();
        var whole = a.trunc();
        var q = v.sign() * (whole + (a - whole >= 0.5f).to(ScalarType.Float32));
        return (q * d.to(ScalarType.Float16).to(ScalarType.Float32)).reshape(x.shape);
    }

    static float[][] Logits(Qwen35ForCausalLM model, long[] ids)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        model.eval();
        var logits = model.Logits(model.Forward(new ModelInputs(tensor(ids, dtype: ScalarType.Int64).unsqueeze(0))))
            .squeeze(0).to(ScalarType.Float32).contiguous();
        var flat = logits.data<float>().ToArray();
        var v = (int)logits.shape[1];
        return Enumerable.Range(0, (int)logits.shape[0]).Select(i => flat.AsSpan(i * v, v).ToArray()).ToArray();
    }

    static int Agree(float[][] a, float[][] b) => a.Zip(b).Count(p => LlamaCppRunner.ArgMax(p.First) == LlamaCppRunner.ArgMax(p.Second));

    /// <summary>Mean cross-entropy of each next token (position t predicts ids[t + 1]), in double.</summary>
    public static double MeanLoss(float[][] logits, long[] ids)
    {
        double sum = 0;
        for (var t = 0; t + 1 < ids.Length; t++)
        {
            var row = logits[t];
            double max = row.Max(), z = 0;
            foreach (var x in row) z += Math.Exp(x - max);
            sum += max + Math.Log(z) - row[ids[t + 1]];
        }
        return sum / Math.Max(1, ids.Length - 1);
    }
}
