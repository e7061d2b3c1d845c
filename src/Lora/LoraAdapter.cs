using Qwen35.Models.Modules;
using TorchSharp;
using static TorchSharp.torch;
using Qwen35.Models;

namespace Qwen35.Lora;

/// <summary>
/// The LoRA branch of one projection: y = base + s·B(A(dropout(x))), with A = <c>lora_A.weight</c> [r, in] and
/// B = <c>lora_B.weight</c> [out, r] (PEFT's <c>Linear.forward</c>). The adapter is kept in fp32 while the frozen base
/// may be bf16: x is cast to the adapter dtype for the branch and the delta is cast back to the base output dtype, so
/// the frozen matmul itself is never upcast (TorchSharp has no autocast; mixed-dtype matmuls throw).
/// </summary>
public sealed class LoraAdapter : IProjectionAdapter
{
    /// <summary>Full module name of the adapted projection, e.g. <c>model.language_model.layers.3.self_attn.q_proj</c>.</summary>
    public string ModuleName { get; }

    /// <summary>The adapted projection (its <c>weight</c> is what merging changes).</summary>
    public Projection Target { get; }

    public LoraWeight LoraA { get; }
    public LoraWeight LoraB { get; }

    public int Rank { get; }
    public double Alpha { get; }
    public double Scaling { get; }
    public double Dropout { get; }

    // Cached: an implicit double->Scalar conversion allocates a native object per call that only the finalizer frees.
    readonly Scalar _scale;

    /// <summary>True while s·B·A is folded into the base weight; the branch then adds nothing.</summary>
    public bool Merged { get; internal set; }

    /// <summary>False: the branch adds nothing, so the projection computes the base model's output (a DPO reference
    /// pass uses the base model this way, without a second copy of it). See <see cref="LoraInjector.Disable"/>.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>
    /// When the input is bf16 (a bf16 base), compute the branch in bf16: A and B (fp32 parameters, r·(in+out) values)
    /// are cast per call and their gradients come back to fp32 through the cast. This skips the fp32 copy of the
    /// input [.., in] and the fp32 delta [.., out] plus its cast, i.e. the memory traffic of the fp32 branch, at the
    /// price of bf16 rounding inside the branch (its result is rounded to bf16 anyway when added to the base output).
    /// With an fp32 input it changes nothing.
    /// </summary>
    public bool ComputeInInputDtype { get; set; }

    public IReadOnlyList<(string Name, nn.Module Module)> Children => [("lora_A", LoraA), ("lora_B", LoraB)];

    /// <summary>Creates an adapter with the given (already initialised) A [r, in] and B [out, r]; takes ownership.</summary>
    public LoraAdapter(string moduleName, Projection target, Tensor a, Tensor b, double alpha, double scaling, double dropout)
    {
        if (a.dim() != 2 || b.dim() != 2 || a.shape[1] != target.InFeatures || b.shape[0] != target.OutFeatures || b.shape[1] != a.shape[0])
            throw new ArgumentException(
                $"{moduleName}: LoRA shapes A {Shapes.Format(a.shape)} / B {Shapes.Format(b.shape)} do not fit a projection " +
                $"{target.InFeatures} -> {target.OutFeatures} (need A [r,{target.InFeatures}], B [{target.OutFeatures},r])");
        ModuleName = moduleName;
        Target = target;
        Rank = (int)a.shape[0];
        Alpha = alpha;
        Scaling = scaling;
        _scale = scaling.ToScalar();
        Dropout = dropout;
        LoraA = new LoraWeight(a);
        LoraB = new LoraWeight(b);
    }

    /// <summary>
    /// base + s·(A x)ᵀ Bᵀ on 2-d rows: the input-side product, then <see cref="ApplyUp"/>.
    /// </summary>
    public Tensor Apply(Tensor input, Tensor baseOutput)
    {
        if (Merged || !Enabled) return baseOutput;
        var dtype = LoraA.weight.dtype;
        var inInputDtype = ComputeInInputDtype && input.dtype != dtype;
        var x = inInputDtype ? input : input.InDtype(dtype);
        // Dropout follows the module's training flag, which model.train()/eval() propagates to the children.
        if (Dropout > 0 && LoraA.training) x = nn.functional.dropout(x, Dropout, training: true);
        return ApplyUp(nn.functional.linear(x, LoraA.weight.InDtype(x.dtype)), baseOutput);   // h = x·Aᵀ [rows, r]
    }

    /// <summary>A, when this adapter's input-side product may be computed together with others' on the same input:
    /// it is on, draws no dropout mask of its own, and runs in its own dtype (fp32).</summary>
    public Tensor? SharedDownWeight =>
        Merged || !Enabled || (Dropout > 0 && LoraA.training) || ComputeInInputDtype ? null : LoraA.weight;

    /// <summary>
    /// base + s·h·Bᵀ given h = x·Aᵀ. When h has the base output's dtype, the second product, the scaling and the sum
    /// are one <c>addmm</c> (PEFT's order, the scale applied to the product): one autograd node instead of three.
    /// </summary>
    public Tensor ApplyUp(Tensor down, Tensor baseOutput)
    {
        var b = LoraB.weight.InDtype(down.dtype);
        if (down.dtype == baseOutput.dtype) return baseOutput.addmm(down, b.t(), beta: 1, alpha: (float)Scaling);
        // An fp32 branch on a bf16 base: scale the narrow [rows, r] intermediate (r/out of the work), cast the delta.
        var delta = nn.functional.linear(down.mul(_scale), b);
        return baseOutput.add(delta.to(baseOutput.dtype));
    }

    /// <summary>s·B·A [out, in] in fp32 (the weight delta merging adds).</summary>
    public Tensor DeltaWeight() => DeltaWeight(LoraA.weight, LoraB.weight, Scaling);

    /// <summary>s·B·A [out, in] in fp32 from the factors A [r, in] and B [out, r]: the one formula of the merge, also
    /// used by exports that merge a weight read from a file without building the model (the streamed GGUF export).</summary>
    public static Tensor DeltaWeight(Tensor a, Tensor b, double scaling)
    {
        using var scope = NewDisposeScope();
        return b.detach().to(ScalarType.Float32).matmul(a.detach().to(ScalarType.Float32))
            .mul(scaling).MoveToOuterDisposeScope();
    }

    /// <summary>Trainable parameters of this adapter: r·(in + out).</summary>
    public long ParameterCount => LoraA.weight.numel() + LoraB.weight.numel();
}
