using Serilog;
using Serilog.Core;
using Serilog.Events;
using Serilog.Formatting.Compact;

namespace Qwen35.Training.Observability;

/// <summary>Serilog for a run: human-readable lines on stderr, compact JSON in output_dir/train.log.jsonl.</summary>
public static class TrainLogging
{
    /// <summary>A logger that writes train.log.jsonl into <paramref name="outputDir"/> from the first event (the
    /// folder is created by the file sink); null = stderr only.</summary>
    public static Logger Create(string? outputDir, LogEventLevel consoleLevel = LogEventLevel.Information)
    {
        var config = Console(consoleLevel);
        if (outputDir != null)
            config = config.WriteTo.File(new CompactJsonFormatter(), Path.Combine(outputDir, "train.log.jsonl"));
        return config.CreateLogger();
    }

    /// <summary>A logger whose train.log.jsonl waits in <paramref name="file"/> until the run opens it (the CLI:
    /// output_dir is created only once setup succeeded; <see cref="SftTrainer.LogFile"/>).</summary>
    public static Logger CreateDeferred(RunLogFile file, LogEventLevel consoleLevel = LogEventLevel.Information) =>
        Console(consoleLevel).WriteTo.Sink(file).CreateLogger();

    static LoggerConfiguration Console(LogEventLevel consoleLevel) =>
        new LoggerConfiguration()
            .MinimumLevel.Debug()
            // stderr: stdout is reserved for results (README.md, "Other verbs": logs to stderr, results to stdout).
            .WriteTo.Console(restrictedToMinimumLevel: consoleLevel, standardErrorFromLevel: LogEventLevel.Verbose,
                outputTemplate: "{Timestamp:HH:mm:ss} {Level:u3} {Message:lj}{NewLine}{Exception}");
}
