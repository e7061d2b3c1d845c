using System.CommandLine;

namespace Qwen35.Cli.Commands;

/// <summary>The verbs of the `trainer` program, in the order `--help` lists them.</summary>
static class CommandRegistry
{
    public static IEnumerable<Command> All()
    {
        // Add one line per verb; each verb is built in its own file.
        yield return TrainCommand.Build();
        yield return EvalCommand.Build();
        yield return ScoreCommand.Build();
        yield return GenerateCommand.Build();
        yield return SafetyEvalCommand.Build();
        yield return InspectCommand.Build();
        yield return MergeCommand.Build();
        yield return GgufCommand.Build();
        yield return DataCommands.Build();
        yield return TokenizeCommand.Build();
        yield return BenchCommand.Build();
        yield return VerifyCommand.Build();
        yield return DoctorCommand.Build();
    }
}
