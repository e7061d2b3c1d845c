using System.Globalization;

namespace Qwen35.Safety.Judging;

/// <summary>llm-jp-judge's <c>BaseScoreExtractor</c> + <c>int(pattern)</c>: the FIRST match of the pass's regex
/// (Python's <c>re.search</c>), its group as an integer; later matches are ignored and nothing checks the range.</summary>
public static class ScoreExtractor
{
    /// <summary>The captured score, or null when the text is null (an API error) or has no match.</summary>
    public static int? Score(JudgePass pass, string? judgeText)
    {
        if (judgeText is null) return null;
        var m = JudgeTemplates.ScoreRegex(pass).Match(judgeText);
        // Python's int() reads any Unicode decimal digit, e.g. a full-width ５ that \d matched.
        return m.Success ? CharUnicodeInfo.GetDecimalDigitValue(m.Groups[1].Value, 0) : null;
    }

    public static bool Matches(JudgePass pass, string judgeText) => JudgeTemplates.ScoreRegex(pass).IsMatch(judgeText);
}
