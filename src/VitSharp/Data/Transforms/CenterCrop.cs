namespace VitSharp.Data.Transforms;

/// <summary>torchvision's center_crop: offsets int(round((size - crop) / 2)) with Python's round-half-to-even; an image
/// smaller than the crop is padded with zeros first, as torchvision pads.</summary>
public static class CenterCrop
{
    public static Image Apply(Image image, int width, int height)
    {
        if (width == image.Width && height == image.Height) return image;
        if (width <= image.Width && height <= image.Height)
        {
            int left = (int)Math.Round((image.Width - width) / 2.0, MidpointRounding.ToEven);
            int top = (int)Math.Round((image.Height - height) / 2.0, MidpointRounding.ToEven);
            return image.Crop(left, top, width, height);
        }
        var img = image.To8Bit();
        int c = img.Channels;
        int padLeft = Math.Max(width - img.Width, 0) / 2, padTop = Math.Max(height - img.Height, 0) / 2;
        int pw = Math.Max(width, img.Width), ph = Math.Max(height, img.Height);
        var padded = new byte[pw * ph * c];
        for (int y = 0; y < img.Height; y++)
            Buffer.BlockCopy(img.Pixels!, y * img.Width * c, padded, ((y + padTop) * pw + padLeft) * c, img.Width * c);
        return Apply(new Image(pw, ph, c, padded), width, height);
    }
}
