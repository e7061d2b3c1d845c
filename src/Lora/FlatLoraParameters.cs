using System.Runtime.CompilerServices;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Qwen35.Lora;

/// <summary>One parameter's place in <see cref="FlatLoraParameters"/>: elements [Offset, Offset + Count).</summary>
public sealed record FlatSlice(string Name, Parameter Param, long Offset, long Count);

/// <summary>
/// Every trainable LoRA tensor (A and B of every adapted projection) as a view into ONE contiguous fp32 buffer,
/// <see cref="Values"/>, and every gradient as a view into ONE contiguous buffer, <see cref="Grads"/>
/// (<c>Values.grad</c> is <see cref="Grads"/>). The parameters keep their identity (the model's modules, names and
/// the PEFT export see the same <see cref="Parameter"/> objects); only their storage moves into the buffer.
/// <para>Why: a 9B all-linear adapter has ~770 tensors, and the optimizer, weight decay, clipping, the NaN check and
/// zeroing cost several native operations per tensor; on the flat buffer each is a handful per step (AdamW over the
/// single parameter <see cref="Values"/>), and a data-parallel step can all-reduce <see cref="Grads"/> as one buffer.</para>
/// <para>Autograd accumulates into an existing <c>.grad</c> in place (libtorch's AccumulateGrad adds into it when
/// grad mode is off, as it is during backward), so the per-parameter gradient views fill <see cref="Grads"/> without a
/// copy; the one rule is that nobody may replace a parameter's <c>.grad</c> (set it to null or a new tensor): zero
/// <see cref="Grads"/> instead. <c>FlatLoraParametersTests</c> checks both the aliasing and the accumulation.</para>
/// </summary>
public sealed class FlatLoraParameters : IDisposable
{
    // Values → its layout, so code holding only the optimizer (checkpoints) finds the per-parameter slices.
    static readonly ConditionalWeakTable<Parameter, FlatLoraParameters> ByValues = new();

    /// <summary>All parameters' values, [total] fp32; the single parameter the optimizer updates.</summary>
    public Parameter Values { get; }

    /// <summary>All gradients, [total] fp32, = <c>Values.grad</c>; each parameter's <c>.grad</c> is a view of it.</summary>
    public Tensor Grads { get; }

    /// <summary>The parameters in buffer order (the order given to <see cref="Create"/>).</summary>
    public IReadOnlyList<FlatSlice> Slices { get; }

    FlatLoraParameters(Parameter values, Tensor grads, IReadOnlyList<FlatSlice> slices)
    {
        Values = values;
        Grads = grads;
        Slices = slices;
    }

    /// <summary>
    /// Moves the parameters' storage into one buffer (their current values are copied) and gives each a gradient
    /// view of zeros. All must be fp32, on one device, and not already flat; their order is the buffer's order.
    /// </summary>
    public static FlatLoraParameters Create(IReadOnlyList<(string Name, Parameter Param)> parameters)
    {
        if (parameters.Count == 0) throw new ArgumentException("no parameters to flatten");
        var device = parameters[0].Param.device;
        foreach (var (name, p) in parameters)
        {
            if (p.dtype != ScalarType.Float32) throw new ArgumentException($"{name}: flat LoRA storage is fp32, got {p.dtype}");
            if (p.device.type != device.type || p.device.index != device.index) throw new ArgumentException($"{name}: on {p.device}, the others on {device}");
        }
        var total = parameters.Sum(p => p.Param.numel());
        var values = zeros(total, dtype: ScalarType.Float32, device: device);
        var grads = zeros(total, dtype: ScalarType.Float32, device: device);
        var slices = new List<FlatSlice>(parameters.Count);
        long offset = 0;
        using (no_grad())
        {
            foreach (var (name, p) in parameters)
            {
                var n = p.numel();
                using var scope = NewDisposeScope();
                var shape = p.shape;
                var view = values.narrow(0, offset, n).view(shape);
                view.copy_(p);
                // set_ repoints the parameter (same object, same autograd leaf) at the buffer's storage. (It returns
                // the parameter itself: not disposed here.)
                p.set_(view);
                p.grad = grads.narrow(0, offset, n).view(shape).MoveToOuterDisposeScope();
                slices.Add(new FlatSlice(name, p, offset, n));
                offset += n;
            }
        }
        var parameter = new Parameter(values, requires_grad: true);
        parameter.grad = grads;
        var flat = new FlatLoraParameters(parameter, grads, slices);
        ByValues.Add(parameter, flat);
        return flat;
    }

    /// <summary>The flat storage whose <see cref="Values"/> is <paramref name="values"/>, or null for any other parameter.</summary>
    public static FlatLoraParameters? Of(Parameter values) => ByValues.TryGetValue(values, out var flat) ? flat : null;

    /// <summary>The elements of <paramref name="flat"/> (a tensor laid out like <see cref="Values"/>, e.g. an optimizer
    /// moment) that belong to <paramref name="slice"/>, as a view shaped like its parameter.</summary>
    public static Tensor SliceOf(Tensor flat, FlatSlice slice) => flat.narrow(0, slice.Offset, slice.Count).view(slice.Param.shape);

    public void Dispose()
    {
        Grads.Dispose();
        Values.Dispose();
    }
}
