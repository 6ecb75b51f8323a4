namespace VitSharp.Data.Transforms;

/// <summary>
/// The Inception crop as torchvision's RandomResizedCrop.get_params draws it: up to 10 tries of a box whose area is a
/// uniform fraction in <c>scale</c> of the image and whose log aspect ratio is uniform in log(<c>ratio</c>); a box that
/// fits is placed uniformly; after 10 misses, a centred crop clamped to the ratio range (or the whole image).
/// timm uses scale (0.08, 1), Google's ViT recipes (0.05, 1); ratio (3/4, 4/3) for both. Deterministic given the Random.
/// </summary>
public static class RandomResizedCrop
{
    /// <summary>A crop rectangle in source pixels.</summary>
    public readonly record struct Box(int Left, int Top, int Width, int Height);

    public static Box Sample(int width, int height, Random rng, double scaleMin = 0.08, double scaleMax = 1.0,
        double ratioMin = 3.0 / 4, double ratioMax = 4.0 / 3)
    {
        double area = (double)width * height, logMin = Math.Log(ratioMin), logMax = Math.Log(ratioMax);
        for (int attempt = 0; attempt < 10; attempt++)
        {
            double target = area * (scaleMin + (scaleMax - scaleMin) * rng.NextDouble());
            double aspect = Math.Exp(logMin + (logMax - logMin) * rng.NextDouble());
            int w = (int)Math.Round(Math.Sqrt(target * aspect), MidpointRounding.ToEven);
            int h = (int)Math.Round(Math.Sqrt(target / aspect), MidpointRounding.ToEven);
            if (w > 0 && w <= width && h > 0 && h <= height)
            {
                int top = rng.Next(0, height - h + 1), left = rng.Next(0, width - w + 1);
                return new Box(left, top, w, h);
            }
        }
        double inRatio = (double)width / height;
        int cw = width, ch = height;
        if (inRatio < ratioMin) ch = (int)Math.Round(cw / ratioMin, MidpointRounding.ToEven);
        else if (inRatio > ratioMax) cw = (int)Math.Round(ch * ratioMax, MidpointRounding.ToEven);
        return new Box((width - cw) / 2, (height - ch) / 2, cw, ch);
    }

    /// <summary>Crops a sampled box and resizes it to size×size with Pillow's filter (torchvision's resized_crop on PIL images).</summary>
    public static Image Apply(Image image, int size, Random rng, Interpolation interpolation = Interpolation.Bilinear,
        double scaleMin = 0.08, double scaleMax = 1.0, double ratioMin = 3.0 / 4, double ratioMax = 4.0 / 3)
    {
        var b = Sample(image.Width, image.Height, rng, scaleMin, scaleMax, ratioMin, ratioMax);
        return Resize.Pil(image.Crop(b.Left, b.Top, b.Width, b.Height), size, size, interpolation);
    }
}
