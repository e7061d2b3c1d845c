using System.ClientModel;

namespace Qwen35.Safety.Backends;

/// <summary>What the attempts at one call came to.</summary>
/// <param name="Text">The text of the last attempt that returned one (also when it was not accepted); null when no
/// attempt returned text (an API error in llm-jp-judge's terms).</param>
/// <param name="Accepted">Whether <see cref="Text"/> passed the check (the judge's regex).</param>
/// <param name="Attempts">Counted attempts.</param>
/// <param name="Errors">Why each failed attempt failed.</param>
public sealed record AttemptResult(string? Text, bool Accepted, int Attempts, IReadOnlyList<string> Errors);

/// <summary>Runs one chat call under the <see cref="RetryRule"/>. Failures that no retry can fix (unreachable server,
/// server errors after the transport's own retries, a wrong key or model name) end the run as a
/// <see cref="BackendException"/> naming <c>backend</c>; a local backend's own exceptions pass through.</summary>
public static class AttemptLoop
{
    public static async Task<AttemptResult> RunAsync(Func<CancellationToken, Task<string>> call, Func<string, bool>? accept,
        RetryRule rule, string backend, CancellationToken ct)
    {
        string? last = null;
        var errors = new List<string>();
        var counted = 0;
        var waits = 0;
        while (counted < rule.MaxAttempts)
        {
            string text;
            try
            {
                text = await call(ct).ConfigureAwait(false);
            }
            catch (Exception e) when (Classify(e, ct) is var kind && kind != Failure.Unknown)
            {
                errors.Add(e.Message);
                switch (kind)
                {
                    case Failure.Rejected:
                        counted++;
                        if (counted < rule.MaxAttempts) await Delay(rule.IntervalOrDefault, ct).ConfigureAwait(false);
                        continue;
                    case Failure.RateLimited:
                        if (++waits > rule.MaxRateLimitWaits)
                            throw new BackendException($"{backend}: still rate-limited or timing out after {rule.MaxRateLimitWaits} waits of " +
                                $"{rule.RateLimitWaitOrDefault.TotalSeconds:0.#} s ({OneLine(e.Message)}); lower --concurrency or check the server", e);
                        await Delay(rule.RateLimitWaitOrDefault, ct).ConfigureAwait(false);
                        continue;
                    default:
                        throw new BackendException($"{backend}: {Describe(kind, e)}", e);
                }
            }
            last = text;
            if (accept is null || accept(text)) return new AttemptResult(text, true, counted + 1, errors);
            errors.Add("No score found in the response");   // llm-jp-judge's ValueError text
            counted++;
            if (counted < rule.MaxAttempts) await Delay(rule.IntervalOrDefault, ct).ConfigureAwait(false);
        }
        return new AttemptResult(last, false, counted, errors);
    }

    enum Failure { Unknown, Rejected, RateLimited, Unreachable, Refused, ServerError }

    /// <summary>llm-jp-judge's classes: BadRequestError (400) counts (and so does a malformed answer body), RateLimitError (429) and APITimeoutError retry
    /// uncounted; what its client does not catch (5xx after the OpenAI client's own retries, 401, 404, no connection)
    /// stops it, and stops this run too.</summary>
    static Failure Classify(Exception e, CancellationToken ct)
    {
        if (ct.IsCancellationRequested) return Failure.Unknown;
        // The transport's retry policy reports a connection that failed on every try as an AggregateException of them.
        if (e is AggregateException { InnerExceptions.Count: > 0 } all) return Classify(all.Flatten().InnerExceptions[^1], ct);
        return e switch
        {
            ClientResultException { Status: 400 } => Failure.Rejected,
            ClientResultException { Status: 429 or 408 } => Failure.RateLimited,
            ClientResultException { Status: >= 500 } => Failure.ServerError,
            ClientResultException { Status: 0 } => Failure.Unreachable,
            ClientResultException => Failure.Refused,
            HttpRequestException => Failure.Unreachable,
            // A 200 whose body is not a chat completion: asked again like a judge text without a score (llm-jp-judge's
            // client would stop on it; a proxy's truncated answer is worth another attempt, and the attempts are bounded).
            System.Text.Json.JsonException or FormatException => Failure.Rejected,
            TimeoutException or TaskCanceledException => Failure.RateLimited,
            _ => Failure.Unknown,
        };
    }

    static string Describe(Failure kind, Exception e) => kind switch
    {
        Failure.Unreachable => $"cannot reach the server ({OneLine(Innermost(e).Message)}); is it running at that address?",
        Failure.ServerError => $"the server kept failing ({OneLine(e.Message)})",
        _ => $"the server refused the request ({OneLine(e.Message)}); check the model name and the API key",
    };

    static Exception Innermost(Exception e) =>
        e is AggregateException { InnerExceptions.Count: > 0 } a ? Innermost(a.Flatten().InnerExceptions[^1])
        : e.InnerException is { } inner ? Innermost(inner) : e;

    static string OneLine(string s) => s.ReplaceLineEndings(" ").Trim();

    static Task Delay(TimeSpan t, CancellationToken ct) => t <= TimeSpan.Zero ? Task.CompletedTask : Task.Delay(t, ct);
}
