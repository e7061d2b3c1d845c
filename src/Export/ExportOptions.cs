using Qwen35.Export.Gguf;

namespace Qwen35.Export;

/// <summary>One GGUF file a training run ends with (recipe <c>export.gguf</c>; docs/gguf.md "At the end of a run").</summary>
public enum GgufOutput
{
    /// <summary><c>model-f32.gguf</c>: the model with the adapter merged in, matrices F32.</summary>
    F32,
    /// <summary><c>model-f16.gguf</c>.</summary>
    F16,
    /// <summary><c>model-bf16.gguf</c>.</summary>
    Bf16,
    /// <summary><c>model-q8_0.gguf</c>.</summary>
    Q8_0,
    /// <summary><c>adapter-lora-f32.gguf</c>: the adapter alone as a llama.cpp LoRA GGUF, factors F32 (exactly as trained).</summary>
    Lora,
    /// <summary><c>adapter-lora-f16.gguf</c>: the same with F16 factors (half the size).</summary>
    LoraF16,
}

/// <summary>The recipe's <c>export:</c> section: what a run writes into output_dir after its adapter.</summary>
public sealed record ExportOptions
{
    /// <summary>GGUF files for llama.cpp (<see cref="GgufOutput"/>), e.g. <c>[q8_0, lora]</c>; empty = none.</summary>
    public List<GgufOutput> Gguf { get; init; } = [];

    public IEnumerable<OptionProblem> Problems() => new OptionChecks()
        .Require(Gguf.Distinct().Count() == Gguf.Count, "gguf", "names a file twice")
        .Problems;

    /// <summary>The file <paramref name="output"/> is written to, inside output_dir.</summary>
    public static string FileName(GgufOutput output) => output switch
    {
        GgufOutput.Lora => "adapter-lora-f32.gguf",
        GgufOutput.LoraF16 => "adapter-lora-f16.gguf",
        _ => $"model-{OptionNames.Name(output)}.gguf",
    };

    /// <summary>Whether <paramref name="output"/> is the adapter alone, and the storage type it is written in.</summary>
    public static (bool LoraOnly, GgufType Type) Kind(GgufOutput output) => output switch
    {
        GgufOutput.F32 => (false, GgufType.F32),
        GgufOutput.F16 => (false, GgufType.F16),
        GgufOutput.Bf16 => (false, GgufType.Bf16),
        GgufOutput.Q8_0 => (false, GgufType.Q8_0),
        GgufOutput.Lora => (true, GgufType.F32),
        GgufOutput.LoraF16 => (true, GgufType.F16),
        _ => throw new ArgumentOutOfRangeException(nameof(output)),
    };
}
