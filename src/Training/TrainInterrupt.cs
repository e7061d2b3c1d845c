namespace Qwen35.Training;

/// <summary>
/// Ctrl-C as a run sees it: the first press asks the loop to stop after the current optimizer step (it saves a
/// checkpoint there and returns, <see cref="Loop.TrainResult.Interrupted"/>); a second press means "stop now", which
/// the caller does itself (the CLI exits 130 without saving). Kept apart from Console so tests can press it.
/// </summary>
public sealed class TrainInterrupt : IDisposable
{
    readonly CancellationTokenSource _cts = new();
    int _presses;

    /// <summary>Cancelled by the first press; <see cref="Loop.TrainLoop.Run"/> checks it between optimizer steps.</summary>
    public CancellationToken Token => _cts.Token;

    /// <summary>Records a press. True for the first (stop gracefully), false for any later one (stop at once).</summary>
    public bool Press()
    {
        var n = Interlocked.Increment(ref _presses);
        if (n == 1) _cts.Cancel();
        return n == 1;
    }

    public void Dispose() => _cts.Dispose();
}
