using Qwen35.Data;
using Qwen35.Training.Dpo;
using Qwen35.Training.Datasets;
using Qwen35.Training.Loop;
using Serilog;

namespace Qwen35.Training;

/// <summary>Loss of a model (optionally with a LoRA adapter) on a dataset: the `trainer eval` verb.</summary>
public static class Evaluation
{
    public sealed record Report(EvalResult Result, int Examples, IReadOnlyList<string> Categories);

    /// <summary>Token-mean loss over the trained tokens of every example of <paramref name="data"/>'s train files,
    /// overall and per category, with the same masking and length policy as training (the same
    /// <see cref="DataOptions"/>; eval_split and packing do not apply).</summary>
    public static Report Run(SessionOptions model, DataOptions data, int batchSize, ILogger log)
    {
        OptionChecks.ThrowIfAny(data.Problems().Select(p => p.Under("data")), "invalid options");
        if (batchSize < 1) throw new UserInputException($"batch_size: must be >= 1, got {batchSize}");
        var session = Session.Open(model);
        using var m = session.LoadModel(log);
        var set = SftData.Load(data with { Packing = false }, batchSize, seed: 42, Directory.GetCurrentDirectory(), session.Tokenizer, log,
            evalOnly: true);
        if (set.EvalBatches.Count == 0)
            throw new UserInputException($"{string.Join(", ", data.Train)}: no example with a trained token to evaluate");
        var result = TrainLoop.Evaluate(m, set.EvalBatches, set.Categories);
        return new Report(result, set.EvalExamples, set.Categories);
    }

    /// <summary>
    /// The DPO loss and TRL's metrics of the model (+ its adapter) on preference pairs, as means over pairs, overall
    /// and per category. The reference is <paramref name="referenceAdapter"/> on the same base model, or the base
    /// model itself (the adapter switched off). With a reference adapter the model is loaded twice in turn, never
    /// twice at once: reference pass, dispose, policy pass.
    /// </summary>
    public static Report RunDpo(SessionOptions model, DataOptions data, DpoOptions dpo, int batchSize, ILogger log)
    {
        OptionChecks.ThrowIfAny(data.Problems().Select(p => p.Under("data")).Concat(dpo.Problems().Select(p => p.Under("dpo"))), "invalid options");
        if (batchSize < 1) throw new UserInputException($"batch_size: must be >= 1, got {batchSize}");
        var session = Session.Open(model);
        var pairs = DpoData.Load(data with { Packing = false }, dpo, batchSize, seed: 42, Directory.GetCurrentDirectory(), session.Tokenizer, log,
            evalOnly: true);
        if (pairs.All.Count == 0) throw new UserInputException($"{string.Join(", ", data.Train)}: no preference pair to evaluate");
        if (dpo.ReferenceAdapter is { } reference)
        {
            using var r = Session.Open(model with { Adapter = reference }).LoadModel(log);
            var (c, rj) = ReferenceLogps.Compute(r, pairs, baseModel: false);
            pairs.SetReference(c, rj);
        }
        using var m = session.LoadModel(log);
        if (dpo.ReferenceAdapter is null)
        {
            var (c, rj) = ReferenceLogps.Compute(m, pairs, baseModel: true);
            pairs.SetReference(c, rj);
        }
        var result = new DpoObjective(dpo).Evaluate(m, pairs.EvalBatches, pairs.Categories, ChunkedCrossEntropy.AutoChunkRows);
        return new Report(result, pairs.All.Count, pairs.Categories);
    }
}
