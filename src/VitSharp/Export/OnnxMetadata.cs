using VitSharp.Checkpoints;
using VitSharp.Models;

namespace VitSharp.Export;

/// <summary>
/// The model's <see cref="ModelMetadata"/> in an ONNX file's metadata_props (key <see cref="ModelMetadata.MetadataKey"/>),
/// so whoever runs the ONNX model can preprocess images as it expects and name its classes. Kept apart from the graph
/// code: entries are appended after <see cref="OnnxExporter.Build"/>'s bytes, as protobuf merges repeated fields of a
/// message serialised in pieces.
/// </summary>
public static class OnnxMetadata
{
    private const int MetadataPropsField = 14; // ModelProto.metadata_props: repeated StringStringEntryProto { key = 1; value = 2; }

    /// <summary>Exports the model (atomically) with the record in its metadata_props.</summary>
    public static void Export(VisionModel model, string path, ModelMetadata metadata)
    {
        var graph = OnnxExporter.Build(model);
        var extra = Entries(new Dictionary<string, string> { [ModelMetadata.MetadataKey] = metadata.ToJson() });
        AtomicFile.Write(path, s =>
        {
            s.Write(graph);
            s.Write(extra);
        });
    }

    /// <summary>metadata_props entries, serialised to append to a ModelProto.</summary>
    public static byte[] Entries(IReadOnlyDictionary<string, string> props)
    {
        var m = new ProtoWriter();
        foreach (var (k, v) in props)
        {
            var e = new ProtoWriter();
            e.String(1, k);
            e.String(2, v);
            m.Message(MetadataPropsField, e);
        }
        return m.ToArray();
    }

    /// <summary>The metadata_props of an ONNX file (later entries win).</summary>
    public static Dictionary<string, string> Read(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var props = new Dictionary<string, string>();
        foreach (var (field, value) in Fields(bytes, path))
        {
            if (field != MetadataPropsField) continue;
            string? key = null, val = null;
            foreach (var (f, v) in Fields(value, path))
            {
                if (f == 1) key = System.Text.Encoding.UTF8.GetString(v);
                else if (f == 2) val = System.Text.Encoding.UTF8.GetString(v);
            }
            if (key is not null) props[key] = val ?? "";
        }
        return props;
    }

    // The length-delimited fields of a protobuf message (others are skipped).
    private static IEnumerable<(int Field, byte[] Value)> Fields(byte[] b, string path)
    {
        int i = 0;
        var found = new List<(int, byte[])>();
        while (i < b.Length)
        {
            long tag = Varint(b, ref i, path);
            int wire = (int)(tag & 7), field = (int)(tag >> 3);
            switch (wire)
            {
                case 0: Varint(b, ref i, path); break;
                case 1: i += 8; break;
                case 5: i += 4; break;
                case 2:
                    long len = Varint(b, ref i, path);
                    if (len < 0 || i + len > b.Length) throw new CheckpointException(path, "truncated ONNX protobuf");
                    found.Add((field, b.AsSpan(i, (int)len).ToArray()));
                    i += (int)len;
                    break;
                default: throw new CheckpointException(path, $"not an ONNX protobuf (wire type {wire})");
            }
        }
        if (i != b.Length) throw new CheckpointException(path, "truncated ONNX protobuf");
        return found;
    }

    private static long Varint(byte[] b, ref int i, string path)
    {
        long v = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            if (i >= b.Length) throw new CheckpointException(path, "truncated ONNX protobuf");
            byte x = b[i++];
            v |= (long)(x & 0x7F) << shift;
            if (x < 0x80) return v;
        }
        throw new CheckpointException(path, "bad varint in ONNX protobuf");
    }
}
