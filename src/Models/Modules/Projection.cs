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

    /// <summary>The input-side matrix [r, in] of a low-rank adapter (LoRA's A), when its product with the input may be
    /// computed together with other adapters' on the same input (<see cref="Projection.ForwardShared"/>); null when
    /// it may not (no such matrix, the adapter is off, or it draws its own dropout mask).</summary>
    Tensor? SharedDownWeight => null;

    /// <summary>The output given h = x·<see cref="SharedDownWeight"/>ᵀ [rows, r] (cast to that matrix's dtype) and the
    /// base output: what <see cref="Apply"/> does after its first product.</summary>
    Tensor ApplyUp(Tensor down, Tensor baseOutput) => throw new NotSupportedException("this adapter shares no input-side product");
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
        var y = BaseProduct(x);
        return Adapter == null ? y : Adapter.Apply(x, y);
    }

    // Wᵀ [in, out] of a frozen weight, kept between calls. TorchSharp's linear is two dispatched calls, t and matmul;
    // with the view at hand a product is one mm, 31 calls fewer per forward of a 4-layer model and twice that with
    // checkpointing (docs/performance.md, "The frozen weights' transposed views"). It is a view, not a copy: in-place
    // writes to the weight (loading, merging) show through it. A weight replaced by another tensor (a module moved to
    // another dtype or device) is noticed by reference and the view made anew.
    Tensor? weightTransposed;
    Parameter? weightTransposedOf;

    /// <summary>x·Wᵀ on 2-d rows: one <c>mm</c> with <see cref="WeightTransposed"/>.</summary>
    Tensor BaseProduct(Tensor rows) => rows.mm(WeightTransposed());

    /// <summary>Wᵀ as a view; a fresh one per call while the weight itself is trained (requires grad), so every graph
    /// has its own transpose node.</summary>
    Tensor WeightTransposed()
    {
        if (weight.requires_grad) return weight.t();
        if (!ReferenceEquals(weightTransposedOf, weight) || weightTransposed is null)
        {
            weightTransposed?.Dispose();
            // Outside every dispose scope: the view lives as long as this projection.
            weightTransposed = weight.t().DetachFromDisposeScope();
            weightTransposedOf = weight;
        }
        return weightTransposed;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) weightTransposed?.Dispose();
        base.Dispose(disposing);
    }

    /// <summary>
    /// The outputs of several projections of the same 2-d input [rows, in] (a layer's q/k/v, gate/up, DeltaNet's four
    /// input projections), each [rows, out]. The input-side products of their adapters (LoRA's x·Aᵀ, rank r each)
    /// are one product with the adapters' A matrices concatenated, [Σr, in], split afterwards: one <c>mm</c> reading
    /// x once instead of one per adapter, and in backward one node instead of one per adapter. Adapters that cannot
    /// share (<see cref="IProjectionAdapter.SharedDownWeight"/> null: dropout, switched off) run on their own.
    /// </summary>
    public static Tensor[] ForwardShared(Tensor rows, params Projection[] projections)
    {
        if (rows.dim() != 2) throw new ArgumentException($"rows must be 2-d [rows, in], got {Shapes.Format(rows.shape)}", nameof(rows));
        // The adapters that can share, in one dtype (the first one's): the others run on their own.
        var offered = projections.Select(p => p.Adapter?.SharedDownWeight).ToArray();
        var dtype = offered.FirstOrDefault(d => d is not null)?.dtype;
        var shared = Enumerable.Range(0, projections.Length).Where(i => dtype is not null && offered[i]?.dtype == dtype).ToArray();
        var outputs = new Tensor[projections.Length];
        foreach (var i in Enumerable.Range(0, projections.Length).Except(shared.Length > 1 ? shared : []))
            outputs[i] = projections[i].Forward2d(rows);
        if (shared.Length < 2) return outputs;

        var downs = shared.Select(i => offered[i]!).ToArray();
        var products = nn.functional.linear(rows.InDtype(dtype!.Value), cat(downs, 0)).split(downs.Select(d => d.shape[0]).ToArray(), 1);
        for (var j = 0; j < shared.Length; j++)
        {
            var p = projections[shared[j]];
            outputs[shared[j]] = p.Adapter!.ApplyUp(products[j], p.BaseProduct(rows));
        }
        return outputs;
    }
}
