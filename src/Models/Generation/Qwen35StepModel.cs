using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Models.Generation;

/// <summary>
/// One decoding session of a <see cref="Qwen35ForCausalLM"/> for <see cref="TokenGenerator"/>: the model plus a fresh
/// <see cref="ModelCache"/> that every <see cref="Step"/> extends. Only the last position goes through the LM head,
/// so a long prompt never materialises [T, V] logits. Dispose to free the cache.
/// </summary>
public sealed class Qwen35StepModel : IStepModel, IDisposable
{
    public Qwen35StepModel(Qwen35ForCausalLM model)
    {
        Model = model;
        Cache = new ModelCache(model.Config);
    }

    public Qwen35ForCausalLM Model { get; }

    /// <summary>KV, conv and recurrent states of every token fed so far (owned by this session).</summary>
    public ModelCache Cache { get; }

    public Device Device => Model.Device;

    public Tensor Step(Tensor inputIds, Tensor attentionMask, Tensor positionIds)
    {
        using var scope = NewDisposeScope();
        var hidden = Model.Forward(new ModelInputs(inputIds, attentionMask, positionIds, Cache: Cache));
        var last = hidden.narrow(1, hidden.shape[1] - 1, 1).squeeze(1);
        return Model.Logits(last).to(ScalarType.Float32).MoveToOuterDisposeScope();
    }

    public void Dispose() => Cache.Dispose();
}
