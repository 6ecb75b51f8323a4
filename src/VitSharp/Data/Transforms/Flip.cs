namespace VitSharp.Data.Transforms;

/// <summary>Mirror images left–right (torchvision's hflip).</summary>
public static class Flip
{
    public static Image Horizontal(Image image)
    {
        var img = image.To8Bit();
        int w = img.Width, c = img.Channels;
        var o = new byte[img.Pixels!.Length];
        for (int y = 0; y < img.Height; y++)
            for (int x = 0; x < w; x++)
                Buffer.BlockCopy(img.Pixels, (y * w + x) * c, o, (y * w + (w - 1 - x)) * c, c);
        return new Image(w, img.Height, c, o);
    }

    /// <summary>Flips with probability <paramref name="p"/>, drawing one double from <paramref name="rng"/> (always, so streams stay aligned).</summary>
    public static Image RandomHorizontal(Image image, Random rng, double p = 0.5) => rng.NextDouble() < p ? Horizontal(image) : image;
}
