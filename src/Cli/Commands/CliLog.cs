using Serilog;
using Serilog.Core;
using Serilog.Events;
using Serilog.Parsing;

namespace Qwen35.Cli.Commands;

/// <summary>The log of a verb other than train: "verb: message" lines (warnings as "verb: warning: …") on the verb's
/// stderr, which stays apart from the results on stdout and is what the in-process tests capture.</summary>
static class CliLog
{
    public static Logger For(string verb, TextWriter stderr) => new LoggerConfiguration()
        .MinimumLevel.Information()
        .WriteTo.Sink(new VerbSink(verb, stderr))
        .CreateLogger();

    sealed class VerbSink(string verb, TextWriter stderr) : ILogEventSink
    {
        public void Emit(LogEvent e)
        {
            var level = e.Level >= LogEventLevel.Warning ? e.Level.ToString().ToLowerInvariant() + ": " : "";
            // Strings are written as they are (Serilog's default rendering would quote them).
            var message = new StringWriter();
            foreach (var token in e.MessageTemplate.Tokens)
                if (token is PropertyToken p && e.Properties.TryGetValue(p.PropertyName, out var v) && v is ScalarValue { Value: string text })
                    message.Write(text);
                else token.Render(e.Properties, message);
            stderr.WriteLine($"{verb}: {level}{message}");
        }
    }
}
