using System.IO.Compression;
using System.Text.RegularExpressions;

namespace VitSharp.Tests.Transforms;

/// <summary>A minimal .npz/.npy reader for test references: uint8 and little-endian float32 arrays, C order.</summary>
public sealed record NpyArray(int[] Shape, byte[]? U8, float[]? F32)
{
    public static Dictionary<string, NpyArray> ReadNpz(string path)
    {
        using var zip = ZipFile.OpenRead(path);
        var d = new Dictionary<string, NpyArray>();
        foreach (var e in zip.Entries)
        {
            using var s = e.Open();
            using var ms = new MemoryStream();
            s.CopyTo(ms);
            d[Path.GetFileNameWithoutExtension(e.Name)] = Parse(ms.ToArray());
        }
        return d;
    }

    public static NpyArray Parse(byte[] b)
    {
        if (b.Length < 10 || b[0] != 0x93 || b[1] != 'N') throw new InvalidDataException("not a .npy file");
        int major = b[6];
        int hlen = major == 1 ? BitConverter.ToUInt16(b, 8) : BitConverter.ToInt32(b, 8);
        int start = major == 1 ? 10 : 12;
        string header = System.Text.Encoding.ASCII.GetString(b, start, hlen);
        string descr = Regex.Match(header, @"'descr':\s*'([^']+)'").Groups[1].Value;
        if (header.Contains("'fortran_order': True")) throw new InvalidDataException("Fortran order");
        var shape = Regex.Match(header, @"'shape':\s*\(([^)]*)\)").Groups[1].Value
            .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(int.Parse).ToArray();
        int data = start + hlen;
        return descr switch
        {
            "|u1" => new NpyArray(shape, b[data..], null),
            "<f4" => new NpyArray(shape, null, System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(b.AsSpan(data)).ToArray()),
            _ => throw new InvalidDataException($"dtype {descr} not supported"),
        };
    }
}
