namespace Qwen35.Export.Gguf;

/// <summary>The output types `trainer gguf --type` offers (spelled f32, f16, bf16).</summary>
public enum GgufType
{
    F32,
    F16,
    Bf16,
    /// <summary>8-bit blocks of 32 with an F16 scale; tensors whose rows are not a multiple of 32 fall back to F16.</summary>
    Q8_0,
}

/// <summary>ggml's tensor type ids, as written in a GGUF tensor info (ggml.h <c>enum ggml_type</c>).</summary>
public enum GgmlType : uint
{
    F32 = 0,
    F16 = 1,
    Q8_0 = 8,
    Bf16 = 30,
}

public static class GgufTypes
{
    /// <summary>The storage type of the tensors that take the output type.</summary>
    public static GgmlType Storage(this GgufType type) => type switch
    {
        GgufType.F32 => GgmlType.F32,
        GgufType.F16 => GgmlType.F16,
        GgufType.Bf16 => GgmlType.Bf16,
        GgufType.Q8_0 => GgmlType.Q8_0,
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };

    /// <summary><c>general.file_type</c> (llama.cpp's <c>llama_ftype</c>: 0 all F32, 1 mostly F16, 32 mostly BF16).</summary>
    public static uint FileType(this GgufType type) => type switch
    {
        GgufType.F32 => 0,
        GgufType.F16 => 1,
        GgufType.Bf16 => 32,
        GgufType.Q8_0 => 7,
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };

    /// <summary>Q8_0's block: 32 values, stored as an F16 scale and 32 int8.</summary>
    public const int Q8Block = 32, Q8BlockBytes = 2 + 32;

    /// <summary>Bytes of <paramref name="elements"/> values (a whole number of blocks for Q8_0).</summary>
    public static long Bytes(this GgmlType type, long elements) => type switch
    {
        GgmlType.F32 => 4 * elements,
        GgmlType.F16 or GgmlType.Bf16 => 2 * elements,
        GgmlType.Q8_0 when elements % Q8Block == 0 => elements / Q8Block * Q8BlockBytes,
        GgmlType.Q8_0 => throw new ArgumentException($"Q8_0 needs a multiple of {Q8Block} values, not {elements}"),
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };

    /// <summary>
    /// The storage type of a tensor with dims <paramref name="ne"/> (innermost first) that takes the output type:
    /// Q8_0 blocks run along the innermost dimension, so a tensor whose rows are not a multiple of 32 is stored as F16.
    /// </summary>
    public static GgmlType StorageFor(this GgufType type, long[] ne) =>
        type == GgufType.Q8_0 && ne[0] % Q8Block != 0 ? GgmlType.F16 : type.Storage();
}
