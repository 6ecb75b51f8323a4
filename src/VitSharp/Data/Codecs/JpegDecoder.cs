using System.Buffers;
using System.Buffers.Binary;

namespace VitSharp.Data.Codecs;

/// <summary>
/// JPEG (ITU T.81) baseline, extended-Huffman and progressive, 8-bit, any sampling factors, restart markers, 1/3/4
/// components. Matches libjpeg-turbo's defaults (djpeg): islow IDCT, fancy (triangular) upsampling for 2×1, 1×2 and 2×2
/// chroma, box replication for other integer ratios, libjpeg's fixed-point YCbCr→RGB. Adobe/CMYK and YCCK files become
/// RGB (inverted-CMYK convention). The EXIF Orientation tag is applied when <see cref="DecodeOptions.ApplyExifOrientation"/>.
/// Arithmetic coding, lossless and 12-bit JPEG are refused with an <see cref="ImageFormatException"/>.
/// </summary>
public sealed class JpegDecoder : IImageDecoder
{
    public string Format => "jpeg";
    public bool Sniff(ReadOnlySpan<byte> h) => h.Length >= 3 && h[0] == 0xFF && h[1] == 0xD8 && h[2] == 0xFF;

    public Image Decode(ReadOnlySpan<byte> data, string name, DecodeOptions options)
    {
        if (!Sniff(data)) throw new ImageFormatException(name, "not a JPEG (no SOI marker)");
        var state = new JpegState(data.ToArray(), name, options);
        Image image;
        try
        {
            state.ReadMarkers();
            image = JpegOutput.Build(state);
        }
        finally { state.ReturnBuffers(); }
        if (options.ApplyExifOrientation && state.Orientation > 1) image = ImageOrientation.Apply(image, state.Orientation);
        return image;
    }
}

/// <summary>One colour component of a frame and its decoded coefficients.</summary>
internal sealed class JpegComponent
{
    public int Id, H, V, QuantIndex;
    public int BlocksPerLine, BlocksPerColumn;   // padded to whole MCUs
    public int Width, Height;                      // downsampled size in samples: ceil(imageSize * factor / max)
    public short[] Coefs = [];
    public ushort[]? Quant;                        // latched at the component's first scan, as libjpeg does
    public int DcPred;
}

/// <summary>Parser state: markers, tables, frame; the entropy decoding of scans lives in <see cref="JpegScan"/>.</summary>
internal sealed class JpegState
{
    public readonly byte[] Data;
    public readonly string Name;
    readonly DecodeOptions _options;
    public int Pos;
    public readonly ushort[]?[] QuantTables = new ushort[4][];
    public readonly JpegHuffmanTable?[] DcTables = new JpegHuffmanTable[4], AcTables = new JpegHuffmanTable[4];
    public JpegComponent[] Components = [];
    public int Width, Height, MaxH, MaxV, McusX, McusY, RestartInterval;
    public bool Progressive, FrameSeen, SawJfif, SawAdobe, AnyScan;
    public int AdobeTransform = -1, ScanCount;
    public long TotalBlocks, BlockVisits;
    public int Orientation = 1;

    public JpegState(byte[] data, string name, DecodeOptions options) { Data = data; Name = name; _options = options; Pos = 2; }

    public ImageFormatException Error(string problem) => new(Name, problem);

    public void ReadMarkers()
    {
        while (true)
        {
            int marker = NextMarker();
            if (marker == 0xD9) { if (!AnyScan) throw Error("no image data before EOI"); return; }
            if (marker == -1)
            {
                if (AnyScan) return; // truncated after some scans: keep what was decoded, as libjpeg does with a warning
                throw Error("truncated before the first scan");
            }
            if (marker is >= 0xD0 and <= 0xD7 or 0x01) continue; // stray RSTn / TEM: no length
            if (Pos + 2 > Data.Length) { if (AnyScan) return; throw Error("truncated marker segment"); }
            int len = BinaryPrimitives.ReadUInt16BigEndian(Data.AsSpan(Pos));
            if (len < 2 || Pos + len > Data.Length)
            {
                if (AnyScan) return;
                throw Error($"marker 0x{marker:X2} segment of {len} bytes runs past the end of the file");
            }
            var seg = Data.AsSpan(Pos + 2, len - 2);
            int segEnd = Pos + len;
            switch (marker)
            {
                case 0xC0 or 0xC1 or 0xC2: ReadFrame(seg, marker == 0xC2); break;
                case 0xC3 or 0xC5 or 0xC6 or 0xC7 or 0xCB or 0xCD or 0xCE or 0xCF: throw Error($"lossless or hierarchical JPEG (SOF{marker - 0xC0}) is not supported");
                case 0xC9 or 0xCA: throw Error("arithmetic-coded JPEG is not supported");
                case 0xC4: ReadHuffman(seg); break;
                case 0xDB: ReadQuant(seg); break;
                case 0xDD:
                    if (seg.Length < 2) throw Error("short DRI segment");
                    RestartInterval = BinaryPrimitives.ReadUInt16BigEndian(seg);
                    break;
                case 0xDA:
                    if (!FrameSeen) throw Error("SOS before SOF (wrong marker order)");
                    Pos = segEnd;
                    JpegScan.Decode(this, seg);
                    AnyScan = true;
                    continue; // JpegScan leaves Pos at the first marker after the entropy-coded data
                case 0xE0: if (seg.Length >= 5 && seg[..5].SequenceEqual("JFIF\0"u8)) SawJfif = true; break;
                case 0xE1: if (seg.Length >= 6 && seg[..6].SequenceEqual("Exif\0\0"u8)) Orientation = ExifOrientation.Read(seg[6..]); break;
                case 0xEE:
                    if (seg.Length >= 12 && seg[..5].SequenceEqual("Adobe"u8)) { SawAdobe = true; AdobeTransform = seg[11]; }
                    break;
                case 0xD8: throw Error("second SOI marker");
                case 0xDC: break; // DNL: heights are taken from SOF (a zero height is refused there)
                default:
                    if (marker is < 0xC0 or 0xC8) throw Error($"unexpected marker 0x{marker:X2}");
                    break; // APPn, COM, JPG extensions: skipped
            }
            Pos = segEnd;
        }
    }

    /// <summary>The next marker code, skipping fill bytes (and, like libjpeg, garbage before it); -1 at end of data.</summary>
    int NextMarker()
    {
        while (Pos < Data.Length)
        {
            if (Data[Pos] != 0xFF) { Pos++; continue; }
            while (Pos < Data.Length && Data[Pos] == 0xFF) Pos++;
            if (Pos >= Data.Length) return -1;
            int m = Data[Pos++];
            if (m != 0) return m;
        }
        return -1;
    }

    public void ReturnBuffers()
    {
        foreach (var c in Components)
            if (c is not null && c.Coefs.Length > 0) { ArrayPool<short>.Shared.Return(c.Coefs); c.Coefs = []; }
    }

    void ReadFrame(ReadOnlySpan<byte> s, bool progressive)
    {
        if (FrameSeen) throw Error("second SOF marker");
        if (s.Length < 6) throw Error("short SOF segment");
        if (s[0] != 8) throw Error($"{s[0]}-bit JPEG is not supported (8-bit only)");
        Height = BinaryPrimitives.ReadUInt16BigEndian(s[1..]);
        Width = BinaryPrimitives.ReadUInt16BigEndian(s[3..]);
        int n = s[5];
        if (Height == 0) throw Error("zero image height (DNL-defined height is not supported)");
        _options.CheckSize(Name, Width, Height);
        if (n is not (1 or 3 or 4)) throw Error($"{n} components: 1, 3 or 4 are supported");
        if (s.Length < 6 + 3 * n) throw Error("short SOF segment");
        Components = new JpegComponent[n];
        for (int i = 0; i < n; i++)
        {
            var c = Components[i] = new JpegComponent { Id = s[6 + 3 * i], H = s[7 + 3 * i] >> 4, V = s[7 + 3 * i] & 15, QuantIndex = s[8 + 3 * i] };
            if (c.H is < 1 or > 4 || c.V is < 1 or > 4) throw Error($"bad sampling factors {c.H}x{c.V}");
            if (c.QuantIndex > 3) throw Error("bad quantisation table index");
            for (int j = 0; j < i; j++) if (Components[j].Id == c.Id) throw Error("duplicate component id");
        }
        MaxH = Components.Max(c => c.H);
        MaxV = Components.Max(c => c.V);
        McusX = (Width + 8 * MaxH - 1) / (8 * MaxH);
        McusY = (Height + 8 * MaxV - 1) / (8 * MaxV);
        TotalBlocks = 0;
        foreach (var c in Components) TotalBlocks += (long)McusX * c.H * McusY * c.V;
        // Every block costs at least one bit in the first scan that reaches it (its DC code), so a file with far fewer
        // bits than blocks is truncated or hostile; refusing it bounds memory by the file size, not only by MaxPixels.
        if (TotalBlocks > 64L * Data.Length)
            throw Error($"a file of {Data.Length} bytes is too small for a {Width}x{Height} image (truncated or hostile)");
        foreach (var c in Components)
        {
            c.Width = (Width * c.H + MaxH - 1) / MaxH;
            c.Height = (Height * c.V + MaxV - 1) / MaxV;
            c.BlocksPerLine = McusX * c.H;
            c.BlocksPerColumn = McusY * c.V;
            // Pooled: a fresh 100 KB array per image would land on the large-object heap and cost a gen-2 GC now and then.
            int count = checked(c.BlocksPerLine * c.BlocksPerColumn * 64);
            c.Coefs = ArrayPool<short>.Shared.Rent(count);
            Array.Clear(c.Coefs, 0, count);
        }
        Progressive = progressive;
        FrameSeen = true;
    }

    void ReadHuffman(ReadOnlySpan<byte> s)
    {
        while (s.Length > 0)
        {
            if (s.Length < 17) throw Error("short DHT segment");
            int tc = s[0] >> 4, th = s[0] & 15;
            if (tc > 1 || th > 3) throw Error("bad Huffman table class or index");
            int total = 0;
            for (int i = 1; i <= 16; i++) total += s[i];
            if (total > 256 || s.Length < 17 + total) throw Error("bad Huffman table (symbol count)");
            var t = new JpegHuffmanTable(s.Slice(1, 16), s.Slice(17, total), Name);
            (tc == 0 ? DcTables : AcTables)[th] = t;
            s = s[(17 + total)..];
        }
    }

    void ReadQuant(ReadOnlySpan<byte> s)
    {
        while (s.Length > 0)
        {
            int pq = s[0] >> 4, tq = s[0] & 15;
            if (pq > 1 || tq > 3) throw Error("bad quantisation table");
            int size = 1 + 64 * (pq + 1);
            if (s.Length < size) throw Error("short DQT segment");
            var q = new ushort[64];
            for (int k = 0; k < 64; k++)
                q[JpegScan.ZigZag[k]] = pq == 0 ? s[1 + k] : BinaryPrimitives.ReadUInt16BigEndian(s[(1 + 2 * k)..]);
            QuantTables[tq] = q;
            s = s[size..];
        }
    }
}
