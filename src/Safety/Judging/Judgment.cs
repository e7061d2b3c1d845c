namespace Qwen35.Safety.Judging;

/// <summary>
/// One judge call as judgments.jsonl keeps it: which answer (<paramref name="Id"/>, <paramref name="Category"/>), which
/// pass, the prompt sent and the raw text that came back. Scores are never stored: they are parsed from
/// <paramref name="JudgeResponse"/> whenever metrics are computed, so <c>--rescore</c> and a live run agree.
/// </summary>
/// <param name="JudgeResponse">The judge's text after the last attempt that got one (llm-jp-judge keeps the last
/// text even when no attempt matched the regex); null when every attempt was an API error.</param>
/// <param name="Attempts">Counted attempts (regex misses and rejected requests; rate limits and timeouts are retried
/// without counting, as llm-jp-judge does).</param>
/// <param name="Errors">Why each failed attempt failed, in order (llm-jp-judge's "evaluation errors").</param>
public sealed record Judgment(
    string Id,
    string? Category,
    JudgePass Pass,
    string JudgePrompt,
    string? JudgeResponse,
    int Attempts = 1,
    IReadOnlyList<string>? Errors = null)
{
    public bool IsApiError => JudgeResponse is null;
}
