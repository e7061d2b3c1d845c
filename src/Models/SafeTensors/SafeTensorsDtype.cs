using TorchSharp;

namespace Qwen35.Models.SafeTensors;

/// <summary>The safetensors dtype names this project reads and writes, and their TorchSharp equivalents.</summary>
public static class SafeTensorsDtype
{
    static readonly Dictionary<string, (torch.ScalarType Type, int Size)> ByName = new(StringComparer.Ordinal)
    {
        ["BF16"] = (torch.ScalarType.BFloat16, 2),
        ["F16"] = (torch.ScalarType.Float16, 2),
        ["F32"] = (torch.ScalarType.Float32, 4),
        ["F64"] = (torch.ScalarType.Float64, 8),
        ["I64"] = (torch.ScalarType.Int64, 8),
        ["I32"] = (torch.ScalarType.Int32, 4),
        ["I16"] = (torch.ScalarType.Int16, 2),
        ["I8"] = (torch.ScalarType.Int8, 1),
        ["U8"] = (torch.ScalarType.Byte, 1),
        ["BOOL"] = (torch.ScalarType.Bool, 1),
    };

    /// <summary>Every supported dtype name, as written in a header.</summary>
    public static IReadOnlyCollection<string> Names => ByName.Keys;

    /// <summary>True when <paramref name="name"/> is a supported dtype (names are case-sensitive, as in the spec).</summary>
    public static bool IsSupported(string name) => ByName.ContainsKey(name);

    public static torch.ScalarType ToScalarType(string name) => Lookup(name).Type;

    /// <summary>Bytes per element.</summary>
    public static int ElementSize(string name) => Lookup(name).Size;

    /// <summary>The header name of a TorchSharp dtype; throws for dtypes safetensors (or this project) cannot store.</summary>
    public static string FromScalarType(torch.ScalarType type)
    {
        foreach (var (name, entry) in ByName)
            if (entry.Type == type) return name;
        throw new NotSupportedException($"dtype {type} cannot be stored in safetensors (supported: {string.Join(", ", ByName.Keys)})");
    }

    static (torch.ScalarType Type, int Size) Lookup(string name) =>
        ByName.TryGetValue(name, out var entry)
            ? entry
            : throw new UserInputException($"unknown safetensors dtype '{name}' (supported: {string.Join(", ", ByName.Keys)})");
}
