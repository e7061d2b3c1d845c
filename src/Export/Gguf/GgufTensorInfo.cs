namespace Qwen35.Export.Gguf;

/// <summary>One tensor of a GGUF file: its name, its dims innermost first (ggml's <c>ne</c>: an [out, in] matrix is
/// {in, out}) and its storage type.</summary>
public sealed record GgufTensorInfo(string Name, long[] Ne, GgmlType Type)
{
    public long Elements => Ne.Aggregate(1L, (a, b) => a * b);
    public long ByteSize => Type.Bytes(Elements);
}
