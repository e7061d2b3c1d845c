namespace Qwen35.Safety.Backends;

/// <summary>
/// llm-jp-judge's retry rule (client/remote.py): up to <see cref="MaxAttempts"/> counted attempts (max_retries 3 + 1),
/// where a regex miss or a rejected request (HTTP 400) counts and waits <see cref="Interval"/>
/// (async_request_interval 0.5 s); a rate limit (429) or timeout waits <see cref="RateLimitWait"/> (60 s) and does not
/// count. llm-jp-judge waits without end there; here <see cref="MaxRateLimitWaits"/> bounds it, so a judge that never
/// answers ends the run with a message instead of hanging it.
/// </summary>
public sealed record RetryRule(
    int MaxAttempts = 4,
    TimeSpan? Interval = null,
    TimeSpan? RateLimitWait = null,
    int MaxRateLimitWaits = 30)
{
    public TimeSpan IntervalOrDefault => Interval ?? TimeSpan.FromSeconds(0.5);

    public TimeSpan RateLimitWaitOrDefault => RateLimitWait ?? TimeSpan.FromSeconds(60);

    /// <summary>No waiting at all (tests, and local backends that have no rate limit to respect).</summary>
    public static RetryRule Immediate { get; } = new(Interval: TimeSpan.Zero, RateLimitWait: TimeSpan.Zero);
}
