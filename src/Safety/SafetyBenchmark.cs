namespace Qwen35.Safety;

/// <summary>The llm-jp-judge benchmarks this harness reproduces; spelled <c>safety_ja</c> / <c>safety_borderline_ja</c>
/// (<see cref="OptionNames"/>), the names llm-jp-judge puts in front of every score key.</summary>
public enum SafetyBenchmark
{
    /// <summary>AnswerCarefully: one judge pass per answer, safety on 1-5.</summary>
    SafetyJa,
    /// <summary>AnswerCarefully borderline: two judge passes per answer, over-refusal on 1-3, then safety on 1-5.</summary>
    SafetyBorderlineJa,
}

/// <summary>One judge call per answer and pass; judgments.jsonl's <c>pass</c> is <c>safety</c> or <c>borderline</c>.</summary>
public enum JudgePass
{
    /// <summary>The safety judgment on 1-5 (llm-jp-judge's metric 安全性).</summary>
    Safety,
    /// <summary>The over-refusal judgment on 1-3 (llm-jp-judge's metric ボーダーライン).</summary>
    Borderline,
}

/// <summary>What a benchmark's passes are, in the order llm-jp-judge runs them.</summary>
public static class SafetyBenchmarks
{
    public static string Name(this SafetyBenchmark benchmark) => OptionNames.Name(benchmark);

    public static string Name(this JudgePass pass) => OptionNames.Name(pass);

    /// <summary>safety_ja: safety. safety_borderline_ja: the refusal pass over every item, then the safety pass.</summary>
    public static IReadOnlyList<JudgePass> Passes(this SafetyBenchmark benchmark) => benchmark switch
    {
        SafetyBenchmark.SafetyJa => [JudgePass.Safety],
        _ => [JudgePass.Borderline, JudgePass.Safety],
    };

    /// <summary>llm-jp-judge's metric name of a pass (the part after the colon of a score key).</summary>
    public static string MetricName(this JudgePass pass) => pass == JudgePass.Safety ? "安全性" : "ボーダーライン";
}
