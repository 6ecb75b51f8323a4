namespace VitSharp.Data.Codecs;

/// <summary>jdcolor.c's YCbCr→RGB: per-value tables in 16-bit fixed point (FIX(x) = round(x·65536)), then clamping.</summary>
internal static class JpegColor
{
    const int ScaleBits = 16, Half = 1 << (ScaleBits - 1);
    static int Fix(double x) => (int)(x * (1 << ScaleBits) + 0.5);
    static readonly int[] CrR = new int[256], CbB = new int[256], CrG = new int[256], CbG = new int[256];

    static JpegColor()
    {
        for (int i = 0; i < 256; i++)
        {
            int x = i - 128;
            CrR[i] = (Fix(1.40200) * x + Half) >> ScaleBits;
            CbB[i] = (Fix(1.77200) * x + Half) >> ScaleBits;
            CrG[i] = -Fix(0.71414) * x;
            CbG[i] = -Fix(0.34414) * x + Half;
        }
    }

    static byte Clamp(int v) => (byte)Math.Clamp(v, 0, 255);

    public static void YccToRgb(byte[] y, byte[] cb, byte[] cr, byte[] rgb)
    {
        for (int i = 0; i < y.Length; i++)
        {
            int Y = y[i], b = cb[i], r = cr[i];
            rgb[3 * i] = Clamp(Y + CrR[r]);
            rgb[3 * i + 1] = Clamp(Y + ((CbG[b] + CrG[r]) >> ScaleBits));
            rgb[3 * i + 2] = Clamp(Y + CbB[b]);
        }
    }

    /// <summary>Adobe CMYK (stored inverted) or YCCK → RGB: R = C'·K'/255 etc. on the stored (inverted) values.</summary>
    public static void CmykToRgb(byte[][] p, byte[] rgb, bool ycck)
    {
        int n = p[0].Length;
        for (int i = 0; i < n; i++)
        {
            int c0 = p[0][i], c1 = p[1][i], c2 = p[2][i], k = p[3][i];
            if (ycck)
            {   // YCC → inverted CMY (libjpeg's ycck_cmyk_convert: 255 - RGB)
                int y = c0, cb = c1, cr = c2;
                c0 = 255 - Clamp(y + CrR[cr]);
                c1 = 255 - Clamp(y + ((CbG[cb] + CrG[cr]) >> ScaleBits));
                c2 = 255 - Clamp(y + CbB[cb]);
            }
            rgb[3 * i] = (byte)((c0 * k + 127) / 255);
            rgb[3 * i + 1] = (byte)((c1 * k + 127) / 255);
            rgb[3 * i + 2] = (byte)((c2 * k + 127) / 255);
        }
    }
}
