namespace Qwen35.Safety;

/// <summary>The two stages of a run.</summary>
public enum SafetyStage { Generation, Judging }

/// <summary>How far a stage is: <paramref name="Done"/> of <paramref name="Total"/> calls (reused ones included).</summary>
public sealed record SafetyProgress(SafetyStage Stage, int Done, int Total);
