namespace Qwen35.Export.Gguf;

/// <summary>The output types `trainer gguf --type` offers (spelled f32, f16, bf16).</summary>
public enum GgufType
{
    F32,
    F16,
    Bf16,
}

/// <summary>ggml's tensor type ids, as written in a GGUF tensor info (ggml.h <c>enum ggml_type</c>).</summary>
public enum GgmlType : uint
{
    F32 = 0,
    F16 = 1,
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
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };

    /// <summary><c>general.file_type</c> (llama.cpp's <c>llama_ftype</c>: 0 all F32, 1 mostly F16, 32 mostly BF16).</summary>
    public static uint FileType(this GgufType type) => type switch
    {
        GgufType.F32 => 0,
        GgufType.F16 => 1,
        GgufType.Bf16 => 32,
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };

    /// <summary>Bytes per element of a (non-block) ggml type.</summary>
    public static int ElementBytes(this GgmlType type) => type switch
    {
        GgmlType.F32 => 4,
        GgmlType.F16 or GgmlType.Bf16 => 2,
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };
}
