namespace Qwen35.Models;

/// <summary>How messages write a tensor shape: "[2, 3, 4]" (the way PyTorch prints <c>torch.Size</c> contents).</summary>
public static class Shapes
{
    public static string Format(IEnumerable<long> shape) => "[" + string.Join(", ", shape) + "]";
}
