using Serilog.Core;
using Serilog.Events;
using Serilog.Formatting.Compact;

namespace Qwen35.Training.Observability;

/// <summary>
/// The train.log.jsonl sink of a run whose output_dir may not exist yet: events are kept in memory until
/// <see cref="Open"/> names the file (once setup succeeded and the folder was created), then written there in order,
/// followed by every later event. A run that fails before that leaves no file and no folder; its events went to
/// stderr anyway.
/// </summary>
public sealed class RunLogFile : ILogEventSink, IDisposable
{
    readonly CompactJsonFormatter _format = new();
    readonly List<LogEvent> _pending = [];
    readonly Lock _lock = new();
    StreamWriter? _writer;

    /// <summary>Appends to <paramref name="path"/> (a resumed run continues its log), first the events held so far.</summary>
    public void Open(string path)
    {
        lock (_lock)
        {
            if (_writer is not null) return;
            _writer = new StreamWriter(path, append: true) { AutoFlush = true };
            foreach (var e in _pending) _format.Format(e, _writer);
            _pending.Clear();
        }
    }

    public void Emit(LogEvent logEvent)
    {
        lock (_lock)
        {
            if (_writer is null) _pending.Add(logEvent);
            else _format.Format(logEvent, _writer);
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _writer?.Dispose();
            _writer = null;
            _pending.Clear();
        }
    }
}
