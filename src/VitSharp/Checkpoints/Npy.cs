using System.Buffers.Binary;
using System.Text;
using System.Text.RegularExpressions;

namespace VitSharp.Checkpoints;

/// <summary>NumPy .npy arrays (format 1.0–3.0): little/big-endian float16/32/64, bfloat16 (as 'V2' or '&lt;bf16'), ints.
/// Reads widen to float32; writes are float32 and atomic.</summary>
public static partial class Npy
{
    private static readonly byte[] Magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    public static HostArray Read(string path)
    {
        if (!File.Exists(path)) throw new CheckpointException(path, "file not found");
        using var f = File.OpenRead(path);
        if (f.Length > Array.MaxLength) throw new CheckpointException(path, $"{f.Length} bytes is more than one array holds");
        return Read(f, path);
    }

    public static HostArray Read(Stream stream, string name)
    {
        using var ms = new MemoryStream();
        stream.CopyTo(ms);
        return Parse(ms.GetBuffer().AsSpan(0, (int)ms.Length), name);
    }

    public static long[] ReadInt64(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var (descr, shape, offset, fortran) = Header(bytes, path);
        if (fortran && shape.Length > 1) throw new CheckpointException(path, "Fortran-order integer arrays are not supported");
        long n = CheckpointLimits.Elements(shape, path);
        if (descr != "<i8") throw new CheckpointException(path, $"expected int64 array, found '{descr}'");
        if (n > (bytes.Length - offset) / 8) throw new CheckpointException(path, "truncated data");
        var o = new long[n];
        for (long i = 0; i < n; i++) o[i] = BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan((int)(offset + i * 8)));
        return o;
    }

    public static HostArray Parse(ReadOnlySpan<byte> bytes, string name)
    {
        var (descr, shape, offset, fortran) = Header(bytes, name);
        long n = CheckpointLimits.Elements(shape, name);
        int size = ElementSize(descr, name);
        if (n > (bytes.Length - offset) / size)
            throw new CheckpointException(name, $"truncated: shape {Tensors.Shape.Format(shape)} of '{descr}' needs {(System.Numerics.BigInteger)n * size} bytes after the header, file has {bytes.Length - offset}");
        CheckpointLimits.CheckTensor(n, shape, name, null);
        var data = new float[n];
        Decode(descr, bytes.Slice(offset, (int)(n * size)), data, name);
        if (!fortran || shape.Length < 2) return new HostArray(shape, data);
        // Column-major data is the C-order array of the reversed shape, transposed back.
        var reversed = shape.Reverse().ToArray();
        return new HostArray(reversed, data).Permute(Enumerable.Range(0, shape.Length).Reverse().ToArray());
    }

    private static (string descr, int[] shape, int offset, bool fortran) Header(ReadOnlySpan<byte> b, string name)
    {
        if (b.Length < 10 || !b[..6].SequenceEqual(Magic)) throw new CheckpointException(name, "not a .npy array (bad magic)");
        int major = b[6];
        int headerLen, start;
        if (major == 1) { headerLen = BinaryPrimitives.ReadUInt16LittleEndian(b[8..]); start = 10; }
        else if (major is 2 or 3)
        {
            if (b.Length < 12) throw new CheckpointException(name, "truncated .npy header");
            headerLen = checked((int)BinaryPrimitives.ReadUInt32LittleEndian(b[8..])); start = 12;
        }
        else throw new CheckpointException(name, $"unsupported .npy version {major}");
        if (headerLen < 0 || start + headerLen > b.Length) throw new CheckpointException(name, "truncated .npy header");
        var header = Encoding.Latin1.GetString(b.Slice(start, headerLen));
        var descr = DescrRe().Match(header);
        var fortran = FortranRe().Match(header);
        var shapeM = ShapeRe().Match(header);
        if (!descr.Success || !shapeM.Success) throw new CheckpointException(name, $"malformed .npy header: {header.Trim()}");
        if (header.Length > 64) header = header[..64] + "…";
        var dims = shapeM.Groups[1].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var shape = new int[dims.Length];
        for (int i = 0; i < dims.Length; i++)
            if (!int.TryParse(dims[i], out shape[i]) || shape[i] < 0) throw new CheckpointException(name, $"bad shape in .npy header: {header.Trim()}");
        return (descr.Groups[1].Value, shape, start + headerLen, fortran.Success && fortran.Groups[1].Value == "True");
    }

    private static int ElementSize(string descr, string name) => descr switch
    {
        "<f4" or ">f4" or "<i4" or ">i4" => 4,
        "<f8" or ">f8" or "<i8" or ">i8" => 8,
        "<f2" or ">f2" or "<V2" or "|V2" or "<bf16" or "<i2" => 2,
        "|u1" or "|i1" or "|b1" => 1,
        _ => throw new CheckpointException(name, $"unsupported .npy dtype '{descr}'"),
    };

    private static void Decode(string descr, ReadOnlySpan<byte> src, float[] dst, string name)
    {
        for (int i = 0; i < dst.Length; i++)
        {
            dst[i] = descr switch
            {
                "<f4" => BinaryPrimitives.ReadSingleLittleEndian(src[(i * 4)..]),
                ">f4" => BinaryPrimitives.ReadSingleBigEndian(src[(i * 4)..]),
                "<f8" => (float)BinaryPrimitives.ReadDoubleLittleEndian(src[(i * 8)..]),
                ">f8" => (float)BinaryPrimitives.ReadDoubleBigEndian(src[(i * 8)..]),
                "<f2" => (float)BinaryPrimitives.ReadHalfLittleEndian(src[(i * 2)..]),
                ">f2" => (float)BinaryPrimitives.ReadHalfBigEndian(src[(i * 2)..]),
                "<V2" or "|V2" or "<bf16" => Tensors.BFloat16Convert.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(src[(i * 2)..])),
                "<i4" => BinaryPrimitives.ReadInt32LittleEndian(src[(i * 4)..]),
                ">i4" => BinaryPrimitives.ReadInt32BigEndian(src[(i * 4)..]),
                "<i8" => BinaryPrimitives.ReadInt64LittleEndian(src[(i * 8)..]),
                ">i8" => BinaryPrimitives.ReadInt64BigEndian(src[(i * 8)..]),
                "<i2" => BinaryPrimitives.ReadInt16LittleEndian(src[(i * 2)..]),
                "|u1" or "|b1" => src[i],
                "|i1" => (sbyte)src[i],
                _ => throw new CheckpointException(name, $"unsupported .npy dtype '{descr}'"),
            };
        }
    }

    /// <summary>Writes a float32 little-endian C-order array, atomically (temp file, then rename).</summary>
    public static void Write(string path, ReadOnlySpan<float> data, ReadOnlySpan<int> shape)
    {
        if (Tensors.Shape.Count(shape) != data.Length) throw new ArgumentException("data does not fill shape");
        var dims = shape.Length == 1 ? $"{shape[0]}," : string.Join(", ", shape.ToArray());
        var header = $"{{'descr': '<f4', 'fortran_order': False, 'shape': ({dims}), }}";
        int total = 10 + header.Length + 1;
        int pad = (64 - total % 64) % 64;
        header = header + new string(' ', pad) + "\n";
        var bytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(data).ToArray();
        AtomicFile.Write(path, s =>
        {
            s.Write(Magic);
            s.WriteByte(1); s.WriteByte(0);
            Span<byte> len = stackalloc byte[2];
            BinaryPrimitives.WriteUInt16LittleEndian(len, (ushort)header.Length);
            s.Write(len);
            s.Write(Encoding.Latin1.GetBytes(header));
            s.Write(bytes);
        });
    }

    [GeneratedRegex(@"'descr'\s*:\s*'([^']+)'")] private static partial Regex DescrRe();
    [GeneratedRegex(@"'fortran_order'\s*:\s*(True|False)")] private static partial Regex FortranRe();
    [GeneratedRegex(@"'shape'\s*:\s*\(([^)]*)\)")] private static partial Regex ShapeRe();
}
