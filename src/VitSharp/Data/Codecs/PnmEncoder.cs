namespace VitSharp.Data.Codecs;

/// <summary>Binary PGM (P5) for 1–2 channels or PPM (P6) for 3–4; alpha is dropped; 16-bit images get maxval 65535.</summary>
public sealed class PnmEncoder : IImageEncoder
{
    public string Format => "pnm";

    public void Encode(Image image, Stream output)
    {
        int c = image.Channels, outC = c <= 2 ? 1 : 3;
        int maxval = image.BitDepth == 16 ? 65535 : 255;
        output.Write(System.Text.Encoding.ASCII.GetBytes($"P{(outC == 1 ? 5 : 6)}\n{image.Width} {image.Height}\n{maxval}\n"));
        int n = image.Width * image.Height;
        int bytes = maxval > 255 ? 2 : 1;
        var buf = new byte[n * outC * bytes];
        for (int i = 0, k = 0; i < n; i++)
            for (int ch = 0; ch < outC; ch++, k++)
            {
                if (bytes == 1) buf[k] = image.Pixels![i * c + ch];
                else { ushort v = image.Pixels16![i * c + ch]; buf[2 * k] = (byte)(v >> 8); buf[2 * k + 1] = (byte)v; }
            }
        output.Write(buf);
    }
}
