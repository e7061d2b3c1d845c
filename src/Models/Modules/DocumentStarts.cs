using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Models.Modules;

/// <summary>Converts the packed-row encoding of <c>ModelInputs.SequenceIds</c> into the per-token start flags that
/// <see cref="GatedDeltaRule"/> and <see cref="CausalConv"/> take.</summary>
public static class DocumentStarts
{
    /// <summary>
    /// Bool [B,T]: true at t = 0 and wherever the document index differs from the previous token's. (The kernels
    /// ignore the flag at t = 0, so the first document may continue from a cached state.)
    /// </summary>
    public static Tensor FromSequenceIds(Tensor sequenceIds)
    {
        if (sequenceIds.dim() != 2)
            throw new ArgumentException($"sequenceIds must be [B,T], got [{string.Join(",", sequenceIds.shape)}]", nameof(sequenceIds));
        long batch = sequenceIds.shape[0], length = sequenceIds.shape[1];
        using var scope = NewDisposeScope();
        var first = ones(batch, 1, ScalarType.Bool, sequenceIds.device);
        if (length == 1) return first.MoveToOuterDisposeScope();
        var changed = sequenceIds.narrow(1, 1, length - 1).ne(sequenceIds.narrow(1, 0, length - 1));
        return cat([first, changed], 1).MoveToOuterDisposeScope();
    }
}
