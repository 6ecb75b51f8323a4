namespace VitSharp.Training;

/// <summary>
/// Target distributions for softmax cross-entropy. Label smoothing ε gives (1 − ε) + ε/K on the true class and ε/K elsewhere,
/// which is exactly PyTorch's CrossEntropyLoss(label_smoothing=ε) and timm's mixup target construction.
/// </summary>
public static class Targets
{
    public static float[] Smoothed(ReadOnlySpan<int> labels, int classes, float smoothing)
    {
        var t = new float[labels.Length * classes];
        Fill(t, labels, classes, smoothing, 1f);
        return t;
    }

    /// <summary>t += weight · smooth(onehot(labels)).</summary>
    public static void Fill(Span<float> t, ReadOnlySpan<int> labels, int classes, float smoothing, float weight)
    {
        float off = smoothing / classes, on = 1f - smoothing + off;
        for (int b = 0; b < labels.Length; b++)
        {
            if ((uint)labels[b] >= (uint)classes) throw new VitSharpException($"label {labels[b]} is outside 0..{classes - 1}");
            var row = t.Slice(b * classes, classes);
            for (int k = 0; k < classes; k++) row[k] += weight * (k == labels[b] ? on : off);
        }
    }
}
