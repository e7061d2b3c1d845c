namespace Qwen35.Training.Loop;

/// <summary>
/// Learning rate as a pure function of the optimizer step: linear warm-up to the peak, then cosine, linear or constant
/// down to <c>MinLrRatio·peak</c> at the last step. Pure so that resuming at step s needs nothing but s.
/// </summary>
/// <param name="PeakLr">Learning rate reached at the end of warm-up.</param>
/// <param name="WarmupSteps">Number of warm-up steps.</param>
/// <param name="TotalSteps">Total optimizer steps of the run.</param>
/// <param name="Kind">The decay after warm-up.</param>
/// <param name="MinLrRatio">Floor of the decay as a fraction of the peak.</param>
public sealed record LrSchedule(double PeakLr, int WarmupSteps, int TotalSteps, LrSchedulerKind Kind, double MinLrRatio = 0)
{
    /// <summary>The learning rate used by optimizer step <paramref name="step"/> (0-based).</summary>
    public double At(int step)
    {
        // Warm-up counts the step being taken, (step+1)/warmup, so step 0 already moves the weights (HF's
        // step/warmup spends the first update at lr 0) and the last warm-up step runs at the peak.
        if (step < WarmupSteps) return PeakLr * (step + 1) / WarmupSteps;
        if (Kind == LrSchedulerKind.Constant) return PeakLr;
        var decaySteps = Math.Max(1, TotalSteps - WarmupSteps);
        var progress = Math.Clamp((double)(step - WarmupSteps) / decaySteps, 0, 1);
        var factor = Kind switch
        {
            LrSchedulerKind.Cosine => 0.5 * (1 + Math.Cos(Math.PI * progress)),
            _ => 1 - progress,   // Linear
        };
        return PeakLr * (MinLrRatio + (1 - MinLrRatio) * factor);
    }

    /// <summary>Warm-up length from explicit steps, else from a ratio of the total (rounded up when the ratio is positive).</summary>
    public static int WarmupFor(int? warmupSteps, double warmupRatio, int totalSteps) =>
        warmupSteps ?? (int)Math.Ceiling(warmupRatio * totalSteps);
}
