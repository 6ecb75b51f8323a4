using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace VitSharp.Backends.Cuda.Testing;

/// <summary>
/// Minimal readers for the reference data (.npy float32/int64, .safetensors F32) used by the GPU self-test, so it
/// runs before the project's checkpoint readers land. Not a general loader.
/// </summary>
public static partial class RefFiles
{
    public static (float[] Data, int[] Shape) ReadNpy(string path)
    {
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < 10 || bytes[0] != 0x93 || Encoding.ASCII.GetString(bytes, 1, 5) != "NUMPY")
            throw new InvalidDataException($"{path} is not a .npy file");
        int major = bytes[6];
        int headerLen = major == 1 ? BitConverter.ToUInt16(bytes, 8) : BitConverter.ToInt32(bytes, 8);
        int start = major == 1 ? 10 : 12;
        var header = Encoding.ASCII.GetString(bytes, start, headerLen);
        var descr = DescrRe().Match(header).Groups[1].Value;
        if (header.Contains("'fortran_order': True")) throw new InvalidDataException($"{path}: Fortran order");
        var shape = ShapeRe().Match(header).Groups[1].Value
            .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(int.Parse).ToArray();
        long count = Tensors.Shape.Count(shape);
        int off = start + headerLen;
        var data = new float[count];
        switch (descr)
        {
            case "<f4": Buffer.BlockCopy(bytes, off, data, 0, checked((int)count * 4)); break;
            case "<i8": for (int i = 0; i < count; i++) data[i] = BitConverter.ToInt64(bytes, off + 8 * i); break;
            default: throw new InvalidDataException($"{path}: dtype {descr} not supported here");
        }
        return (data, shape);
    }

    public static Dictionary<string, (float[] Data, int[] Shape)> ReadSafetensors(string path)
    {
        var bytes = File.ReadAllBytes(path);
        long n = BitConverter.ToInt64(bytes, 0);
        using var doc = JsonDocument.Parse(bytes.AsMemory(8, (int)n));
        var result = new Dictionary<string, (float[], int[])>();
        foreach (var p in doc.RootElement.EnumerateObject())
        {
            if (p.Name == "__metadata__") continue;
            var dtype = p.Value.GetProperty("dtype").GetString();
            if (dtype != "F32") throw new InvalidDataException($"{path}: {p.Name} is {dtype}, only F32 here");
            var shape = p.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            var offs = p.Value.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            var data = new float[(offs[1] - offs[0]) / 4];
            Buffer.BlockCopy(bytes, (int)(8 + n + offs[0]), data, 0, data.Length * 4);
            result[p.Name] = (data, shape);
        }
        return result;
    }

    [GeneratedRegex(@"'descr':\s*'([^']+)'")] private static partial Regex DescrRe();
    [GeneratedRegex(@"'shape':\s*\(([^)]*)\)")] private static partial Regex ShapeRe();
}
