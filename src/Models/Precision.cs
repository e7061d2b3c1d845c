using static TorchSharp.torch;

namespace Qwen35.Models;

/// <summary>Dtype of the frozen base weights and activations (LoRA parameters are always fp32). One vocabulary for
/// recipes and every verb's <c>--dtype</c>: <c>fp32</c>/<c>float32</c>, <c>bf16</c>/<c>bfloat16</c>.</summary>
public enum Precision
{
    [Alias("float32", "f32")]
    Fp32,

    [Alias("bfloat16")]
    Bf16,
}

public static class PrecisionExtensions
{
    public static ScalarType ToScalarType(this Precision precision) =>
        precision == Precision.Bf16 ? ScalarType.BFloat16 : ScalarType.Float32;
}
