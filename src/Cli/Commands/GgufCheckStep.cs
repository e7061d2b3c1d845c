using Qwen35.Export.Gguf;
using Qwen35.Export.LlamaCpp;
using Qwen35.Models;
using Qwen35.Training;

namespace Qwen35.Cli.Commands;

/// <summary>
/// `trainer gguf --check [--check-base FILE]`: after the export, the written file runs in llama.cpp against the
/// trainer's own fp32 forward of the same model and adapter (<see cref="GgufCheck"/>); a table on stdout, exit 4 when
/// out of bounds. A LoRA file (--lora-only) is checked applied to --check-base, the base model's GGUF.
/// </summary>
static class GgufCheckStep
{
    /// <summary>Refuses a flag combination before anything is written.</summary>
    public static void Validate(bool check, bool loraOnly, string? checkBase)
    {
        if (checkBase is not null && !check) throw new UserInputException("--check-base: only with --check");
        if (checkBase is not null && !loraOnly)
            throw new UserInputException("--check-base: only with --lora-only (a merged export is checked on its own)");
        if (check && loraOnly && checkBase is null)
            throw new UserInputException("--check with --lora-only: give --check-base FILE, the base model's GGUF the adapter is applied to (e.g. written by `trainer gguf --model M --out base.gguf`)");
        if (checkBase is not null && !File.Exists(checkBase)) throw new UserInputException($"{checkBase}: --check-base: no such file");
        if (checkBase is not null && !IsGguf(checkBase)) throw new UserInputException($"{checkBase}: --check-base: not a GGUF file (no GGUF magic at its start)");
    }

    static bool IsGguf(string path)
    {
        Span<byte> magic = stackalloc byte[4];
        using var f = File.OpenRead(path);
        return f.ReadAtLeast(magic, 4, throwOnEndOfStream: false) == 4 && magic.SequenceEqual("GGUF"u8);
    }

    /// <summary>Runs the check of <paramref name="outPath"/>; returns 0 or <see cref="CliErrors.CheckFailed"/>.</summary>
    public static int Run(SessionOptions options, string outPath, GgufType type, bool loraOnly, string? checkBase, TextWriter stdout, TextWriter stderr)
    {
        LlamaCppRunner.QuietLog(stderr.WriteLine);
        // The trainer's side always in fp32 on the CPU: the reference the file is measured against.
        var session = Session.Open(options with { Device = "cpu", Precision = Precision.Fp32 });
        using var log = CliLog.For("gguf", stderr);
        var sequences = CheckSequences.For(session.TokenizerIfAny, session.Config.VocabSize);
        var report = GgufCheck.Run(loraOnly ? checkBase! : outPath, loraOnly ? (outPath, type) : null,
            () => session.LoadModel(log), sequences, Math.Max(1, Environment.ProcessorCount));
        foreach (var line in report.Table()) stdout.WriteLine(line);
        return report.Passed ? CliErrors.Ok : CliErrors.CheckFailed;
    }
}
