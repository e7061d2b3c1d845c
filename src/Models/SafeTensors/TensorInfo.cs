using TorchSharp;

namespace Qwen35.Models.SafeTensors;

/// <summary>
/// One validated header entry. <see cref="DataStart"/>/<see cref="DataEnd"/> are the header's <c>data_offsets</c>:
/// byte offsets relative to the start of the data section (which begins at 8 + header length in the file).
/// </summary>
public sealed record TensorInfo(string Name, string Dtype, long[] Shape, long DataStart, long DataEnd)
{
    public torch.ScalarType ScalarType => SafeTensorsDtype.ToScalarType(Dtype);

    public int ElementSize => SafeTensorsDtype.ElementSize(Dtype);

    public long ByteLength => DataEnd - DataStart;

    /// <summary>Product of <see cref="Shape"/> (1 for a scalar); validation guarantees it does not overflow.</summary>
    public long NumElements => Shape.Aggregate(1L, (a, b) => a * b);

    public override string ToString() => $"{Name} {Dtype}{Shapes.Format(Shape)} @{DataStart}..{DataEnd}";
}
