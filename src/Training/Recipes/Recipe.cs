using Qwen35.Data;
using Qwen35.Lora;
using Qwen35.Models;
using Qwen35.Training.Dpo;
using Qwen35.Training.Loop;
using YamlDotNet.Serialization;

namespace Qwen35.Training.Recipes;

/// <summary>
/// A training recipe: everything one run needs, read from YAML with snake_case keys (docs/training.md lists every
/// key). Its sections ARE the libraries' option records (<see cref="LoraOptions"/>, <see cref="DataOptions"/>,
/// <see cref="ScheduleOptions"/>), bound by YamlDotNet directly, so each default lives in one place and a recipe
/// file states only what it changes.
/// </summary>
public sealed record Recipe
{
    /// <summary>Model folder (config.json + safetensors) or <c>builtin:tiny</c> (seeded random weights).</summary>
    public string Model { get; init; } = Session.BuiltinTiny;

    /// <summary>Tokenizer folder, or <c>builtin</c> (the byte-level tokenizer of the tiny model). Null = the model's.</summary>
    public string? Tokenizer { get; init; }

    public LoraOptions Lora { get; init; } = new();
    public DataOptions Data { get; init; } = new();
    public ScheduleOptions Schedule { get; init; } = new();
    public Qwen35.Export.ExportOptions Export { get; init; } = new();

    /// <summary>What the run optimises: <c>sft</c> (the data's trained tokens) or <c>dpo</c> (preference pairs, the
    /// <c>dpo:</c> section; docs/dpo.md).</summary>
    public TrainingObjectiveKind Objective { get; init; } = TrainingObjectiveKind.Sft;

    public DpoOptions Dpo { get; init; } = new();

    /// <summary>Frozen base weights' dtype (LoRA parameters are always fp32).</summary>
    public Precision Precision { get; init; } = Precision.Fp32;

    /// <summary><c>cpu</c>, <c>cuda</c> or <c>cuda:N</c>.</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>Recompute each decoder layer in the backward pass instead of keeping its activations.</summary>
    public bool ActivationCheckpointing { get; init; }

    /// <summary>Evaluate every N optimizer steps (0 = only at the end).</summary>
    public int EvalEvery { get; init; }

    /// <summary>Evaluations during training beyond the eval loss: <c>eval.safety</c> (<see cref="TrainingSafetyEvalOptions"/>).</summary>
    public EvalOptions Eval { get; init; } = new();

    /// <summary>Write a resumable checkpoint every N optimizer steps (0 = none).</summary>
    public int SaveEvery { get; init; }

    /// <summary>How many step checkpoints to keep (older ones are deleted).</summary>
    public int KeepLast { get; init; } = 2;

    /// <summary>Log a metrics line every N optimizer steps.</summary>
    public int LogEvery { get; init; } = 1;

    /// <summary>libtorch intra-op threads on CPU (0 = libtorch's default, one per core).</summary>
    public int CpuThreads { get; init; }

    /// <summary>Where the adapter, metrics, logs and checkpoints go.</summary>
    public string OutputDir { get; init; } = "runs/latest";

    /// <summary>What the run's <see cref="Session"/> resolves: model, tokenizer, dtype, device, threads.</summary>
    [YamlIgnore]
    public SessionOptions SessionOptions => new()
    {
        Model = Model, Tokenizer = Tokenizer, Precision = Precision, Device = Device, CpuThreads = CpuThreads,
    };

    /// <summary>Every problem, keyed by its full recipe key (<c>lora.rank</c>, <c>output_dir</c>, …).</summary>
    public IEnumerable<OptionProblem> Problems() => new OptionChecks()
        .Add(SessionOptions.Problems())
        .Require(EvalEvery >= 0, "eval_every", "must be >= 0")
        .Require(SaveEvery >= 0, "save_every", "must be >= 0")
        .Require(KeepLast >= 1, "keep_last", "must be >= 1")
        .Require(LogEvery >= 1, "log_every", "must be >= 1")
        .Require(!string.IsNullOrWhiteSpace(OutputDir), "output_dir", "must not be empty")
        .Add(Lora.Problems(), "lora")
        .Add(Data.Problems(), "data")
        .Add(Schedule.Problems(), "schedule")
        .Add(Export.Problems(), "export")
        .Add(Eval.Problems(), "eval")
        .Add(Dpo.Problems(), "dpo")
        .Problems;
}
