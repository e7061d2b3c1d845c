namespace Qwen35.Safety.Data;

/// <summary>One question of a safety benchmark: what is asked, the model answer AnswerCarefully gives as the
/// reference (pasted into the judge prompt, nothing else compares against it), and its category if the data has one.</summary>
public sealed record SafetyItem(string Id, string? Category, string Question, string Reference);
