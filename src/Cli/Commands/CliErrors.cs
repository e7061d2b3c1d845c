using Qwen35.Training.Loop;

namespace Qwen35.Cli.Commands;

/// <summary>
/// The one error policy of every verb. Exit codes: 0 ok, 1 usage (System.CommandLine's own parse errors), 2 bad input
/// (a <see cref="UserInputException"/>: one line naming the file and line/row/key or the option), 3 anything else (one
/// line on stderr, the stack trace in a log file whose path the line gives), 4 a check failed (verify, doctor),
/// 130 interrupted (Ctrl-C).
/// </summary>
public static class CliErrors
{
    public const int Ok = 0;
    public const int Usage = 1;
    public const int BadInput = 2;
    public const int Failure = 3;
    public const int CheckFailed = 4;
    public const int Interrupted = 130;

    /// <summary>Runs a verb's body under the policy. <paramref name="logDir"/>: where the trace of an unexpected
    /// failure goes (a run's output folder); null = the system's temp folder.</summary>
    public static int Run(string verb, TextWriter stderr, Func<int> body, Func<string?>? logDir = null)
    {
        try
        {
            return body();
        }
        catch (Exception e) when (IsBadInput(e))
        {
            stderr.WriteLine($"{verb}: error: {OneLine(e.Message)}");
            return BadInput;
        }
        catch (Exception e)
        {
            var trace = WriteTrace(verb, e, logDir?.Invoke());
            // A diverged run is explained by its message; anything else is a bug whose trace is worth keeping.
            var what = e is TrainingDivergedException ? e.Message : $"{e.GetType().Name}: {OneLine(e.Message)}";
            stderr.WriteLine($"{verb}: failed: {what}" + (trace is null ? "" : $" (stack trace in {trace})"));
            return Failure;
        }
    }

    /// <summary>
    /// User errors: <see cref="UserInputException"/> (every library's bad-input type derives from it), and the two
    /// .NET exceptions that only a path the user named can raise here (their messages name the path).
    /// </summary>
    static bool IsBadInput(Exception e) =>
        e is UserInputException or FileNotFoundException or DirectoryNotFoundException;

    static string OneLine(string message) => message.ReplaceLineEndings("; ").Replace(";   ", "; ");

    static string? WriteTrace(string verb, Exception e, string? dir)
    {
        try
        {
            dir ??= Path.Combine(Path.GetTempPath(), "qwen35-trainer");
            Directory.CreateDirectory(dir);
            var path = Path.Combine(dir, $"{verb}-error-{DateTime.UtcNow:yyyyMMdd-HHmmss}-{Environment.ProcessId}.log");
            AtomicFile.WriteAllText(path, $"trainer {verb} failed at {DateTime.UtcNow:O}\n{e}\n");
            return path;
        }
        catch (Exception writeError) when (writeError is IOException or UnauthorizedAccessException)
        {
            return null;   // the one-line message still goes out; a read-only temp folder must not hide it
        }
    }
}
