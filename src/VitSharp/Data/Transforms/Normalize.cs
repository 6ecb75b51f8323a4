namespace VitSharp.Data.Transforms;

/// <summary>
/// Per-channel (x/255 − mean) / std into planar CHW float32, computed in float32 in that order as torchvision's
/// ToTensor + Normalize do. Gray images are replicated to RGB and alpha is dropped when three channels are asked for.
/// </summary>
public static class Normalize
{
    public static readonly float[] ImageNetMean = [0.485f, 0.456f, 0.406f], ImageNetStd = [0.229f, 0.224f, 0.225f];
    /// <summary>0.5/0.5 maps pixels to [−1, 1]: Google's ViT checkpoints and most Hugging Face ViTs.</summary>
    public static readonly float[] HalfMean = [0.5f, 0.5f, 0.5f], HalfStd = [0.5f, 0.5f, 0.5f];

    public static float[] ToChw(Image image, float[] mean, float[] std)
    {
        var img = image.ToRgb();
        var hwc = new float[img.Pixels!.Length];
        for (int i = 0; i < hwc.Length; i++) hwc[i] = img.Pixels[i];
        return ToChw(hwc, img.Width, img.Height, 3, mean, std);
    }

    /// <summary>From float samples on the 0–255 scale, HWC with <paramref name="channels"/> channels (1 is replicated).</summary>
    public static float[] ToChw(ReadOnlySpan<float> hwc, int width, int height, int channels, float[] mean, float[] std)
    {
        int n = width * height, outC = mean.Length;
        if (std.Length != outC) throw new ArgumentException("mean and std differ in length");
        var o = new float[n * outC];
        for (int ch = 0; ch < outC; ch++)
        {
            int src = channels == 1 ? 0 : ch;
            float m = mean[ch], s = std[ch];
            for (int i = 0; i < n; i++) o[ch * n + i] = (hwc[i * channels + src] / 255f - m) / s;
        }
        return o;
    }
}
