namespace VitSharp.Training;

/// <summary>The shape of the learning-rate decay after warm-up.</summary>
public enum DecayKind { Cosine, Linear, Constant }

/// <summary>
/// Learning rate per optimizer step: linear warmup from 0 to the peak over <see cref="WarmupSteps"/>, then cosine or linear
/// decay to <see cref="MinLr"/> at <see cref="TotalSteps"/> (the ViT paper's and big_vision's shape).
/// </summary>
public sealed record LrSchedule(float PeakLr, long TotalSteps, long WarmupSteps = 0, DecayKind Decay = DecayKind.Cosine, float MinLr = 0f)
{
    /// <summary>The rate for 0-based step <paramref name="step"/> (the step about to be taken).</summary>
    public float At(long step)
    {
        if (step < WarmupSteps) return PeakLr * (step + 1) / WarmupSteps;
        long span = Math.Max(1, TotalSteps - WarmupSteps);
        double progress = Math.Clamp((double)(step - WarmupSteps) / span, 0, 1);
        double f = Decay switch
        {
            DecayKind.Cosine => 0.5 * (1 + Math.Cos(Math.PI * progress)),
            DecayKind.Linear => 1 - progress,
            _ => 1,
        };
        return (float)(MinLr + (PeakLr - MinLr) * f);
    }
}
