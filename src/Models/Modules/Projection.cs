using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Qwen35.Models.Modules;

/// <summary>
/// Something that adds to a projection's output, such as a LoRA branch. The model knows nothing of LoRA's math:
/// the adapter receives the input and the frozen base output and returns the final output.
/// </summary>
public interface IProjectionAdapter
{
    /// <summary>Child modules to register on the projection, by name (e.g. <c>lora_A</c>, <c>lora_B</c>), so their
    /// parameters appear as <c>…q_proj.lora_A.weight</c> in the model's parameter names.</summary>
    IReadOnlyList<(string Name, nn.Module Module)> Children { get; }

    /// <summary>Returns the projection's output given its input and the base output x·Wᵀ, both 2-d ([rows, in] and
    /// [rows, out]: the projection flattens the leading dimensions first).</summary>
    Tensor Apply(Tensor input, Tensor baseOutput);
}

/// <summary>
/// A bias-free linear layer y = x·Wᵀ with W stored as <c>weight</c> [out, in], exactly like Hugging Face's
/// <c>nn.Linear(bias=False)</c>, so checkpoint keys such as <c>…self_attn.q_proj.weight</c> load by name.
/// Every projection of the Qwen3.5 text decoder is one of these, which is what LoRA targets.
/// </summary>
public sealed class Projection : nn.Module<Tensor, Tensor>
{
    // Field names are state-dict names: keep them exactly as Hugging Face spells them.
    public Parameter weight;

    public int InFeatures { get; }
    public int OutFeatures { get; }

    /// <summary>The attached adapter, or null for a plain projection.</summary>
    public IProjectionAdapter? Adapter { get; private set; }

    public Projection(int inFeatures, int outFeatures, ScalarType dtype = ScalarType.Float32, Device? device = null)
        : base(nameof(Projection))
    {
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        weight = new Parameter(empty(outFeatures, inFeatures, dtype: dtype, device: device), requires_grad: false);
        RegisterComponents();
    }

    /// <summary>Attaches an adapter and registers its child modules under their own names.</summary>
    public void AttachAdapter(IProjectionAdapter adapter)
    {
        if (Adapter != null) throw new InvalidOperationException("this projection already has an adapter");
        foreach (var (name, module) in adapter.Children) register_module(name, module);
        Adapter = adapter;
    }

    /// <summary>
    /// x·Wᵀ (+ the adapter's term) over the last dimension. The products run on 2-d [rows, in] tensors: a matmul of a
    /// 3-d input by a matrix is, in libtorch, a reshape, an mm and a view, each one more autograd node in backward,
    /// and with a LoRA branch that happens three times per projection. Flattening once here makes it one reshape and
    /// one view per projection (docs/performance.md, "Projections").
    /// </summary>
    public override Tensor forward(Tensor x)
    {
        if (x.dim() == 2) return Forward2d(x);
        var y = Forward2d(x.reshape(-1, InFeatures));
        return y.view([.. x.shape[..^1], OutFeatures]);
    }

    Tensor Forward2d(Tensor x)
    {
        var y = nn.functional.linear(x, weight);
        return Adapter == null ? y : Adapter.Apply(x, y);
    }
}
