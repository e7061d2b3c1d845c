namespace Qwen35.Safety.Judging;

/// <summary>How the question, reference and answer fill the judge template.</summary>
public enum JudgeFormat
{
    /// <summary>As llm-jp-judge v2.0.0 does: each slot holds the Python repr of a one-element list, <c>['…']</c>
    /// (a failed generation is <c>[None]</c>). The default, so the judge reads what llm-jp-judge's judge read.</summary>
    Repr,
    /// <summary>The plain strings (as llm-jp-judge's v1 line did); a failed generation is an empty answer.</summary>
    Plain,
}
