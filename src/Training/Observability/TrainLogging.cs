using Serilog;
using Serilog.Core;
using Serilog.Events;
using Serilog.Formatting.Compact;

namespace Qwen35.Training.Observability;

/// <summary>Serilog for a run: human-readable lines on stderr, compact JSON in output_dir/train.log.jsonl.</summary>
public static class TrainLogging
{
    public static Logger Create(string? outputDir, LogEventLevel consoleLevel = LogEventLevel.Information)
    {
        var config = new LoggerConfiguration()
            .MinimumLevel.Debug()
            // stderr: stdout is reserved for results (CONTRACTS CLI rule).
            .WriteTo.Console(restrictedToMinimumLevel: consoleLevel, standardErrorFromLevel: LogEventLevel.Verbose,
                outputTemplate: "{Timestamp:HH:mm:ss} {Level:u3} {Message:lj}{NewLine}{Exception}");
        if (outputDir != null)
            config = config.WriteTo.File(new CompactJsonFormatter(), Path.Combine(outputDir, "train.log.jsonl"));
        return config.CreateLogger();
    }
}
