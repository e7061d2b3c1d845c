using Qwen35.Models;

namespace Qwen35.Training;

/// <summary>
/// What every verb that runs a model names: the model (a Hugging Face folder or <c>builtin:tiny</c>), an optional
/// LoRA adapter, the tokenizer, the dtype and the device. A recipe's top-level keys and the verbs' <c>--model</c>,
/// <c>--adapter</c>, <c>--tokenizer</c>, <c>--dtype</c> and <c>--device</c> flags fill it in; <see cref="Session"/>
/// resolves it once.
/// </summary>
public sealed record SessionOptions
{
    /// <summary>Model folder (config.json + safetensors) or <c>builtin:tiny</c>.</summary>
    public string Model { get; init; } = Session.BuiltinTiny;

    /// <summary>PEFT LoRA adapter folder to attach, or null.</summary>
    public string? Adapter { get; init; }

    /// <summary>Tokenizer folder or tokenizer.json, or <c>builtin</c>; null = the model's (builtin for builtin:tiny).</summary>
    public string? Tokenizer { get; init; }

    public Precision Precision { get; init; } = Precision.Fp32;

    /// <summary><c>cpu</c>, <c>cuda</c> or <c>cuda:N</c>.</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>libtorch intra-op threads on CPU (0 = libtorch's default, one per core).</summary>
    public int CpuThreads { get; init; }

    /// <summary>Every problem that needs no file system or GPU to see, keyed like the recipe.</summary>
    public IEnumerable<OptionProblem> Problems() => new OptionChecks()
        .Require(!string.IsNullOrWhiteSpace(Model), "model", $"must name a model folder or {Session.BuiltinTiny}")
        .Require(Session.IsDeviceName(Device), "device", $"'{Device}' is not one of cpu, cuda, cuda:N")
        .Require(CpuThreads >= 0, "cpu_threads", "must be >= 0 (0 = libtorch default)")
        .Problems;
}
