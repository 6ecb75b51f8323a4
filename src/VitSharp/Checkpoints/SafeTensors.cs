using System.Buffers.Binary;
using System.Text;
using System.Text.Json;

namespace VitSharp.Checkpoints;

/// <summary>
/// The safetensors format: u64 little-endian header length, a JSON header naming each tensor's dtype, shape and byte
/// range, then raw little-endian data. Reading validates every range against the file before touching data.
/// </summary>
public static class SafeTensors
{
    private const long MaxHeader = 100L << 20;

    /// <summary>One tensor in a safetensors header: name, dtype, shape and its byte range in the data section.</summary>
    public sealed record Entry(string Name, string DType, int[] Shape, long Begin, long End);

    public static bool LooksLike(string path)
    {
        try
        {
            using var f = File.OpenRead(path);
            if (f.Length < 10) return false;
            Span<byte> b = stackalloc byte[9];
            f.ReadExactly(b);
            long n = BinaryPrimitives.ReadInt64LittleEndian(b);
            return n > 1 && n <= MaxHeader && b[8] == (byte)'{'; // a short file is then reported as truncated
        }
        catch (IOException) { return false; }
    }

    public static (List<Entry> entries, Dictionary<string, string> metadata, long dataStart) ReadHeader(string path)
    {
        if (!File.Exists(path)) throw new CheckpointException(path, "file not found");
        using var f = File.OpenRead(path);
        return ReadHeader(path, f);
    }

    private static (List<Entry> entries, Dictionary<string, string> metadata, long dataStart) ReadHeader(string path, FileStream f)
    {
        f.Position = 0;
        if (f.Length < 8) throw new CheckpointException(path, $"truncated: {f.Length} bytes is too short for a safetensors header");
        Span<byte> lenBytes = stackalloc byte[8];
        f.ReadExactly(lenBytes);
        long n = BinaryPrimitives.ReadInt64LittleEndian(lenBytes);
        if (n <= 0 || n > MaxHeader) throw new CheckpointException(path, $"not a safetensors file (header length {n})");
        if (8 + n > f.Length) throw new CheckpointException(path, $"truncated: header of {n} bytes but the file has {f.Length}");
        var json = new byte[n];
        f.ReadExactly(json);
        long dataLen = f.Length - 8 - n;
        var entries = new List<Entry>();
        var meta = new Dictionary<string, string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        try
        {
            using var doc = JsonDocument.Parse(json);
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new CheckpointException(path, "corrupt safetensors header: not a JSON object");
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                if (!seen.Add(prop.Name)) throw new CheckpointException(path, "the header names this tensor twice", prop.Name);
                if (prop.Name == "__metadata__")
                {
                    foreach (var m in prop.Value.EnumerateObject()) meta[m.Name] = m.Value.ToString();
                    continue;
                }
                var v = prop.Value;
                var dtype = v.GetProperty("dtype").GetString() ?? "";
                var shape = v.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()).ToArray();
                var offs = v.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()).ToArray();
                if (offs.Length != 2 || offs[0] < 0 || offs[1] < offs[0] || offs[1] > dataLen)
                    throw new CheckpointException(path, $"data range [{string.Join(",", offs)}] lies outside the file's {dataLen} data bytes (truncated or corrupt)", prop.Name);
                long count = CheckpointLimits.Elements(shape, path, prop.Name);
                long size = ElementSize(dtype, path, prop.Name);
                long need = count > long.MaxValue / size ? -1 : count * size;
                if (need != offs[1] - offs[0])
                    throw new CheckpointException(path, $"shape {Tensors.Shape.Format(shape)} of {dtype} needs {(need < 0 ? "more than 2^63" : need.ToString())} bytes, header gives {offs[1] - offs[0]}", prop.Name);
                CheckpointLimits.CheckTensor(count, shape, path, prop.Name);
                if (need > Array.MaxLength)
                    throw new CheckpointException(path, $"shape {Tensors.Shape.Format(shape)} of {dtype} is {need} bytes, more than the {Array.MaxLength} one tensor may hold", prop.Name);
                entries.Add(new Entry(prop.Name, dtype, shape, offs[0], offs[1]));
            }
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new CheckpointException(path, $"corrupt safetensors header: {e.Message}", inner: e);
        }
        // Ranges must tile the data: no overlap (two tensors sharing bytes), no gap, nothing past the last.
        long at = 0;
        foreach (var e in entries.OrderBy(e => e.Begin).ThenBy(e => e.End))
        {
            if (e.End == e.Begin) continue;
            if (e.Begin < at) throw new CheckpointException(path, $"data range [{e.Begin},{e.End}] overlaps another tensor's (ending at {at})", e.Name);
            if (e.Begin > at) throw new CheckpointException(path, $"data range [{e.Begin},{e.End}] leaves a gap after byte {at}", e.Name);
            at = e.End;
        }
        if (at != dataLen) throw new CheckpointException(path, $"{dataLen - at} bytes of data after the last tensor's range (corrupt header?)");
        return (entries, meta, 8 + n);
    }

    public static Dictionary<string, HostArray> Read(string path) => Read(path, out _);

    public static Dictionary<string, HostArray> Read(string path, out Dictionary<string, string> metadata) => Read(path, out metadata, null);

    /// <summary>Reads the tensors that <paramref name="wanted"/> accepts (all when null); the others' data is never read.
    /// The header is validated whole and every kept tensor charged to <see cref="CheckpointLimits.MaxTotalBytes"/>
    /// before the first data byte is read.</summary>
    public static Dictionary<string, HostArray> Read(string path, out Dictionary<string, string> metadata,
        Func<Entry, IReadOnlyDictionary<string, string>, bool>? wanted, long? maxTotalBytes = null)
    {
        var (entries, meta, start) = ReadHeader(path);
        metadata = meta;
        entries = Kept(entries, meta, wanted, maxTotalBytes, path);
        var result = new Dictionary<string, HostArray>(entries.Count);
        using var f = File.OpenRead(path);
        foreach (var e in entries.OrderBy(e => e.Begin))
        {
            var bytes = new byte[e.End - e.Begin];
            f.Position = start + e.Begin;
            f.ReadExactly(bytes);
            result[e.Name] = new HostArray(e.Shape, Decode(e.DType, bytes, path, e.Name));
        }
        return result;
    }

    /// <summary>The entries <paramref name="wanted"/> keeps, each charged (stored bytes, then decoded floats) to the byte
    /// budget before any data is read: the one check the copying and the mapping reader share.</summary>
    private static List<Entry> Kept(List<Entry> entries, IReadOnlyDictionary<string, string> meta,
        Func<Entry, IReadOnlyDictionary<string, string>, bool>? wanted, long? maxTotalBytes, string path)
    {
        if (wanted is not null) entries = entries.Where(e => wanted(e, meta)).ToList();
        long stored = 0, decoded = 0;
        foreach (var e in entries)
        {
            CheckpointLimits.Charge(ref stored, e.End - e.Begin, maxTotalBytes, path, e.Name);
            CheckpointLimits.Charge(ref decoded, (e.End - e.Begin) / ElementSize(e.DType, path, e.Name) * 4, maxTotalBytes, path, e.Name);
        }
        return entries;
    }

    /// <summary>
    /// As <see cref="Read(string, out Dictionary{string, string}, Func{Entry, IReadOnlyDictionary{string, string}, bool}?, long?)"/>,
    /// with the same checks before any data is touched, but the file is mapped (<see cref="MappedFile"/>) and each
    /// array reads its values from the mapping when asked: nothing is copied here. The caller holds the returned
    /// lease and disposes it when the arrays are no longer read (the arrays' own float copies, once made, stay valid).
    /// </summary>
    public static Dictionary<string, HostArray> Map(string path, out Dictionary<string, string> metadata,
        Func<Entry, IReadOnlyDictionary<string, string>, bool>? wanted, long? maxTotalBytes, out MappedLease lease)
    {
        if (!File.Exists(path)) throw new CheckpointException(path, "file not found");
        using var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete);
        var (entries, meta, start) = ReadHeader(path, f);
        metadata = meta;
        entries = Kept(entries, meta, wanted, maxTotalBytes, path);
        var file = MappedFile.Open(path, f, f.Length);
        lease = new MappedLease(file);
        var result = new Dictionary<string, HostArray>(entries.Count);
        foreach (var e in entries)
        {
            long count = (e.End - e.Begin) / ElementSize(e.DType, path, e.Name);
            result[e.Name] = new HostArray(e.Shape, new MappedTensor(file, start + e.Begin, e.End - e.Begin, e.DType, count));
        }
        return result;
    }

    /// <summary>Whether a dtype holds floating-point values (weights); integer and bool tensors are buffers or corrupt.</summary>
    public static bool IsFloat(string dtype) => dtype is "F32" or "F16" or "BF16" or "F64";

    private static byte[] Encode(float[] data, string dtype)
    {
        if (dtype == "F32") return System.Runtime.InteropServices.MemoryMarshal.AsBytes(data.AsSpan()).ToArray();
        if (dtype == "F8_E4M3")
        {
            var c = new byte[data.Length];
            for (int i = 0; i < data.Length; i++)
            {
                c[i] = Tensors.Fp8.Code(data[i]);
                if (!float.IsNaN(data[i]) && Tensors.Fp8.ToFloat(c[i]) != data[i]) throw new ArgumentException($"{data[i]} is not an E4M3 value");
            }
            return c;
        }
        if (dtype == "I8")
        {
            var q = new byte[data.Length];
            for (int i = 0; i < data.Length; i++)
                q[i] = data[i] is >= -128 and <= 127 && data[i] == MathF.Round(data[i]) ? (byte)(sbyte)data[i]
                    : throw new ArgumentException($"{data[i]} is not an int8 value");
            return q;
        }
        var o = new byte[data.Length * 2];
        for (int i = 0; i < data.Length; i++)
        {
            if (dtype == "F16") BinaryPrimitives.WriteHalfLittleEndian(o.AsSpan(i * 2), (Half)data[i]);
            else BinaryPrimitives.WriteUInt16LittleEndian(o.AsSpan(i * 2), Tensors.BFloat16Convert.FromFloat(data[i]));
        }
        return o;
    }

    private static int ElementSize(string dtype, string path, string name) => dtype switch
    {
        "F32" or "I32" => 4,
        "F16" or "BF16" or "I16" => 2,
        "F64" or "I64" => 8,
        "U8" or "I8" or "BOOL" or "F8_E4M3" => 1,
        _ => throw new CheckpointException(path, $"unsupported dtype {dtype}", name),
    };

    private static float[] Decode(string dtype, byte[] b, string path, string name)
    {
        var o = new float[b.Length / ElementSize(dtype, path, name)];
        Decode(dtype, b, o);
        return o;
    }

    /// <summary>Widens stored little-endian values of a dtype (already checked by the header) into floats.</summary>
    internal static void Decode(string dtype, ReadOnlySpan<byte> s, Span<float> o)
    {
        switch (dtype)
        {
            case "F32": System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(s).CopyTo(o); break;
            case "F16": for (int i = 0; i < o.Length; i++) o[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(s[(i * 2)..]); break;
            case "BF16": for (int i = 0; i < o.Length; i++) o[i] = Tensors.BFloat16Convert.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(s[(i * 2)..])); break;
            case "F64": for (int i = 0; i < o.Length; i++) o[i] = (float)BinaryPrimitives.ReadDoubleLittleEndian(s[(i * 8)..]); break;
            case "I64": for (int i = 0; i < o.Length; i++) o[i] = BinaryPrimitives.ReadInt64LittleEndian(s[(i * 8)..]); break;
            case "I32": for (int i = 0; i < o.Length; i++) o[i] = BinaryPrimitives.ReadInt32LittleEndian(s[(i * 4)..]); break;
            case "I16": for (int i = 0; i < o.Length; i++) o[i] = BinaryPrimitives.ReadInt16LittleEndian(s[(i * 2)..]); break;
            case "U8" or "BOOL": for (int i = 0; i < o.Length; i++) o[i] = s[i]; break;
            case "I8": for (int i = 0; i < o.Length; i++) o[i] = (sbyte)s[i]; break;
            case "F8_E4M3": for (int i = 0; i < o.Length; i++) o[i] = Tensors.Fp8.ToFloat(s[i]); break;   // NaN codes are values too
            default: throw new ArgumentException($"unsupported dtype {dtype}");
        }
    }

    /// <summary>Writes tensors (sorted by name) as F32, F16 or BF16 with string metadata, atomically.</summary>
    public static void Write(string path, IReadOnlyDictionary<string, HostArray> tensors, IReadOnlyDictionary<string, string>? metadata = null,
        string dtype = "F32") => Write(path, tensors, metadata, _ => dtype);

    /// <summary>As above with a dtype per tensor: F32, F16, BF16, I8 (the values must be integers in [−128, 127]) or
    /// F8_E4M3 (the values must be E4M3 values, <see cref="Tensors.Fp8.ToFloat"/>: each is stored as its code).</summary>
    public static void Write(string path, IReadOnlyDictionary<string, HostArray> tensors, IReadOnlyDictionary<string, string>? metadata,
        Func<string, string> dtypeOf)
    {
        static int Size(string dtype) => dtype switch { "F32" => 4, "F16" or "BF16" => 2, "I8" or "F8_E4M3" => 1, _ => throw new ArgumentException($"cannot write dtype {dtype}") };
        var names = tensors.Keys.OrderBy(k => k, StringComparer.Ordinal).ToList();
        using var headerStream = new MemoryStream();
        using (var w = new Utf8JsonWriter(headerStream))
        {
            w.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                w.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata) w.WriteString(k, v);
                w.WriteEndObject();
            }
            long offset = 0;
            foreach (var name in names)
            {
                var t = tensors[name];
                w.WriteStartObject(name);
                string dtype = dtypeOf(name);
                int size = Size(dtype);
                w.WriteString("dtype", dtype);
                w.WriteStartArray("shape");
                foreach (var d in t.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                offset += t.Data.LongLength * size;
                w.WriteNumberValue(offset);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        var header = headerStream.ToArray().ToList();
        while ((header.Count + 8) % 8 != 0) header.Add((byte)' ');
        AtomicFile.Write(path, s =>
        {
            Span<byte> len = stackalloc byte[8];
            BinaryPrimitives.WriteInt64LittleEndian(len, header.Count);
            s.Write(len);
            s.Write(header.ToArray());
            foreach (var name in names) s.Write(Encode(tensors[name].Data, dtypeOf(name)));
        });
    }
}
