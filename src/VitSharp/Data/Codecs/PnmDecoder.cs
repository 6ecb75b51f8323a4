namespace VitSharp.Data.Codecs;

/// <summary>
/// Netpbm: P1/P4 (bitmap, 1 = black), P2/P5 (gray), P3/P6 (RGB), P7 (PAM, 1–4 channels). Maxval 255 is kept as is,
/// other maxvals up to 255 are scaled to 0–255 (rounded), maxvals above 255 to 16-bit 0–65535.
/// </summary>
public sealed class PnmDecoder : IImageDecoder
{
    public string Format => "pnm";
    public bool Sniff(ReadOnlySpan<byte> h) => h.Length >= 3 && h[0] == 'P' && h[1] >= '1' && h[1] <= '7' && IsSpace(h[2]);

    public Image Decode(ReadOnlySpan<byte> data, string name, DecodeOptions options)
    {
        if (!Sniff(data)) throw new ImageFormatException(name, "not a netpbm file");
        int kind = data[1] - '0';
        int pos = 2;
        int width, height, channels, maxval;
        if (kind == 7) (width, height, channels, maxval) = ParsePamHeader(data, ref pos, name);
        else
        {
            width = ReadInt(data, ref pos, name, "width");
            height = ReadInt(data, ref pos, name, "height");
            maxval = kind is 1 or 4 ? 1 : ReadInt(data, ref pos, name, "maxval");
            channels = kind is 3 or 6 ? 3 : 1;
            pos++; // the single whitespace byte before raster data
        }
        options.CheckSize(name, width, height);
        if (maxval is < 1 or > 65535) throw new ImageFormatException(name, $"maxval {maxval} outside 1..65535");
        long count = (long)width * height * channels;
        bool ascii = kind is 1 or 2 or 3;
        // Check the raster can be there before allocating for it: a hostile header must not cost memory.
        long need = kind == 4 ? (long)(width + 7) / 8 * height : ascii ? count : count * (maxval > 255 ? 2 : 1);
        if (pos + need > data.Length) throw new ImageFormatException(name, $"truncated raster ({data.Length - pos} bytes for {need})");
        var samples = new int[count];
        if (kind == 4)
        {
            int rowBytes = (width + 7) / 8;
            if (pos + (long)rowBytes * height > data.Length) throw new ImageFormatException(name, "truncated raster");
            for (int y = 0; y < height; y++)
                for (int x = 0; x < width; x++)
                    samples[(long)y * width + x] = (data[pos + y * rowBytes + x / 8] >> (7 - x % 8)) & 1;
        }
        else if (ascii)
        {
            for (long i = 0; i < count; i++)
            {
                if (kind == 1)
                {
                    SkipSpaceAndComments(data, ref pos);
                    if (pos >= data.Length) throw new ImageFormatException(name, "truncated raster");
                    samples[i] = data[pos++] == '1' ? 1 : 0;
                }
                else samples[i] = ReadInt(data, ref pos, name, "sample");
            }
        }
        else
        {
            int bytes = maxval > 255 ? 2 : 1;
            if (pos + count * bytes > data.Length) throw new ImageFormatException(name, "truncated raster");
            for (long i = 0; i < count; i++)
                samples[i] = bytes == 1 ? data[pos + (int)i] : data[pos + 2 * (int)i] << 8 | data[pos + 2 * (int)i + 1];
        }
        bool bitmap = kind is 1 or 4;
        if (maxval > 255)
        {
            var o = new ushort[count];
            for (long i = 0; i < count; i++) o[i] = (ushort)((Math.Min(samples[i], maxval) * 65535L + maxval / 2) / maxval);
            return new Image(width, height, channels, o);
        }
        var o8 = new byte[count];
        for (long i = 0; i < count; i++)
        {
            int v = Math.Min(samples[i], maxval);
            if (bitmap) v = 1 - v;
            o8[i] = (byte)((v * 255 + maxval / 2) / maxval);
        }
        return new Image(width, height, channels, o8);
    }

    static (int W, int H, int C, int Max) ParsePamHeader(ReadOnlySpan<byte> d, ref int pos, string name)
    {
        int w = -1, h = -1, c = -1, max = -1;
        while (true)
        {
            SkipSpaceAndComments(d, ref pos);
            string key = ReadToken(d, ref pos, name);
            if (key == "ENDHDR") break;
            if (key == "TUPLTYPE") { while (pos < d.Length && d[pos] != '\n') pos++; continue; }
            int v = ReadInt(d, ref pos, name, key);
            switch (key)
            {
                case "WIDTH": w = v; break;
                case "HEIGHT": h = v; break;
                case "DEPTH": c = v; break;
                case "MAXVAL": max = v; break;
                default: throw new ImageFormatException(name, $"unknown PAM header field '{key}'");
            }
        }
        if (pos < d.Length && d[pos] == '\r') pos++;
        pos++; // newline after ENDHDR
        if (c is < 1 or > 4) throw new ImageFormatException(name, $"PAM depth {c}: 1 to 4 are supported");
        if (w < 0 || h < 0 || max < 0) throw new ImageFormatException(name, "PAM header lacks WIDTH, HEIGHT or MAXVAL");
        return (w, h, c, max);
    }

    static string ReadToken(ReadOnlySpan<byte> d, ref int pos, string name)
    {
        int start = pos;
        while (pos < d.Length && !IsSpace(d[pos]) && pos - start < 32) pos++;
        if (pos == start) throw new ImageFormatException(name, "truncated header");
        return System.Text.Encoding.ASCII.GetString(d[start..pos]);
    }

    static bool IsSpace(byte b) => b is (byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\r' or 11 or 12;

    static void SkipSpaceAndComments(ReadOnlySpan<byte> d, ref int pos)
    {
        while (pos < d.Length)
        {
            if (d[pos] == '#') while (pos < d.Length && d[pos] != '\n') pos++;
            else if (IsSpace(d[pos])) pos++;
            else break;
        }
    }

    static int ReadInt(ReadOnlySpan<byte> d, ref int pos, string name, string what)
    {
        SkipSpaceAndComments(d, ref pos);
        long v = 0;
        int start = pos;
        while (pos < d.Length && d[pos] >= '0' && d[pos] <= '9')
        {
            v = v * 10 + (d[pos++] - '0');
            if (v > int.MaxValue) throw new ImageFormatException(name, $"{what} is too large");
        }
        if (pos == start) throw new ImageFormatException(name, $"expected a number for {what} at offset {pos}");
        return (int)v;
    }
}
