using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Lora;

/// <summary>
/// Folds adapters into the base weights (W += s·B·A) and back out. The update is computed in fp32 and rounded to W's
/// dtype once, so a bf16 base loses no more than one rounding step per merge.
/// </summary>
public static class LoraMerge
{
    /// <summary>Merges every unmerged adapter of the model; returns how many were merged.</summary>
    public static int Merge(nn.Module model) => LoraInjector.Adapters(model).Count(a => !a.Merged && Merge(a));

    /// <summary>Unmerges every merged adapter of the model; returns how many were unmerged.</summary>
    public static int Unmerge(nn.Module model) => LoraInjector.Adapters(model).Count(a => a.Merged && Unmerge(a));

    /// <summary>W ← W + s·B·A; afterwards the adapter adds nothing to the forward pass.</summary>
    public static bool Merge(LoraAdapter adapter)
    {
        if (adapter.Merged) throw new InvalidOperationException($"{adapter.ModuleName}: adapter is already merged");
        Update(adapter, +1);
        adapter.Merged = true;
        return true;
    }

    /// <summary>W ← W − s·B·A, restoring the base weight up to rounding.</summary>
    public static bool Unmerge(LoraAdapter adapter)
    {
        if (!adapter.Merged) throw new InvalidOperationException($"{adapter.ModuleName}: adapter is not merged");
        Update(adapter, -1);
        adapter.Merged = false;
        return true;
    }

    static void Update(LoraAdapter adapter, int sign)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var w = adapter.Target.weight;
        w.copy_(Updated(w, adapter.DeltaWeight().to(w.device), sign));
    }

    /// <summary>w ± delta computed in fp32 and rounded to w's dtype once (a new tensor; w is unchanged): the one
    /// update of merging, also used by exports that merge a weight read from a file (the streamed GGUF export).</summary>
    public static Tensor Updated(Tensor w, Tensor delta, int sign = +1) =>
        w.to(ScalarType.Float32).add(delta, alpha: sign).to(w.dtype);
}
