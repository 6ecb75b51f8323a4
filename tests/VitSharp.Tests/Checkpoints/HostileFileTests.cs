using System.Diagnostics;
using System.IO.Compression;
using System.Text;
using VitSharp.Checkpoints;

namespace VitSharp.Tests.Checkpoints;

/// <summary>Issue 10's hostile checkpoints, each made here, small: a typed error naming the file (and tensor), in
/// bounded time and memory, never a crash.</summary>
public class HostileFileTests : IDisposable
{
    private readonly string _tmp = Directory.CreateTempSubdirectory("vitsharp-hostile-").FullName;
    private static string Source => TestData.Small("vit_tiny48", "model.safetensors");

    public void Dispose() => Directory.Delete(_tmp, recursive: true);

    private static CheckpointException Refused(string path, Action load, string expected, long maxAllocated = 64L << 20)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        var sw = Stopwatch.StartNew();
        var e = Assert.Throws<CheckpointException>(load);
        Assert.InRange(sw.Elapsed.TotalSeconds, 0, 10);
        Assert.InRange(GC.GetAllocatedBytesForCurrentThread() - before, 0, maxAllocated);
        Assert.Equal(path, e.File);
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain('\n', e.Message);
        return e;
    }

    // ---- .pt pickles ----

    private static byte[] Str(string s)
    {
        var b = Encoding.UTF8.GetBytes(s);
        return [(byte)'X', .. BitConverter.GetBytes(b.Length), .. b];
    }

    /// <summary>A pickle of {name: tensor(storage '0' of numel floats, offset, size, stride)}.</summary>
    private static byte[] TensorPickle(string name, long numel, int[] size, long[] stride)
    {
        var p = new List<byte> { 0x80, 2, (byte)'}' };
        p.AddRange(Str(name));
        p.AddRange("ctorch._utils\n_rebuild_tensor_v2\n"u8.ToArray());
        p.Add((byte)'(');
        p.Add((byte)'('); p.AddRange(Str("storage")); p.AddRange("ctorch\nFloatStorage\n"u8.ToArray());
        p.AddRange(Str("0")); p.AddRange(Str("cpu")); p.Add((byte)'J'); p.AddRange(BitConverter.GetBytes((int)numel)); p.Add((byte)'t');
        p.Add((byte)'Q');
        p.Add((byte)'K'); p.Add(0);
        p.Add((byte)'('); foreach (var s in size) { p.Add((byte)'J'); p.AddRange(BitConverter.GetBytes(s)); } p.Add((byte)'t');
        p.Add((byte)'('); foreach (var s in stride) { p.Add((byte)'J'); p.AddRange(BitConverter.GetBytes((int)s)); } p.Add((byte)'t');
        p.Add((byte)'t'); p.Add((byte)'R');
        p.Add((byte)'s'); p.Add((byte)'.');
        return [.. p];
    }

    private string Pt(string file, byte[] pickle, long storageBytes = -1, CompressionLevel level = CompressionLevel.Fastest)
    {
        var path = Path.Combine(_tmp, file);
        using var zip = ZipFile.Open(path, ZipArchiveMode.Create);
        using (var s = zip.CreateEntry("archive/data.pkl").Open()) s.Write(pickle);
        if (storageBytes >= 0)
        {
            using var s = zip.CreateEntry("archive/data/0", level).Open();
            var chunk = new byte[1 << 20];
            for (long left = storageBytes; left > 0; left -= chunk.Length) s.Write(chunk, 0, (int)Math.Min(chunk.Length, left));
        }
        return path;
    }

    [Fact]
    public void PtTensorNoModelUsesIsRefusedBeforeItsStorageIsRead()
    {
        // 64 MiB of zeros stored for a tensor of a name no model uses: refused from the pickle, the storage never inflated.
        var p = Pt("unused.pt", TensorPickle("optimizer_state.exp_avg", 16 << 20, [16 << 20], [1]), 64L << 20);
        var e = Refused(p, () => Checkpoint.Load(p), "uses this tensor; refused before reading its storage", maxAllocated: 8L << 20);
        Assert.Equal("optimizer_state.exp_avg", e.TensorName);
    }

    [Fact]
    public void PickleDictContainingItselfIsRefused()
    {
        // {}, memoised; then d["a"] = d.
        byte[] pickle = [0x80, 2, (byte)'}', (byte)'q', 0, .. Str("a"), (byte)'h', 0, (byte)'s', (byte)'.'];
        var p = Pt("cycle.pt", pickle);
        Refused(p, () => Checkpoint.Load(p), "contains itself");
    }

    [Fact]
    public void PickleNestedTooDeepIsRefused()
    {
        var pickle = new List<byte> { 0x80, 2, (byte)'}' };
        for (int i = 0; i < 5000; i++) { pickle.AddRange(Str("k")); pickle.Add((byte)'}'); }
        for (int i = 0; i < 5000; i++) pickle.Add((byte)'s');
        pickle.Add((byte)'.');
        var p = Pt("deep.pt", [.. pickle]);
        Refused(p, () => Checkpoint.Load(p), "nested deeper than");
    }

    [Fact]
    public void PickleStrideZeroViewIsRefused()
    {
        var p = Pt("stride0.pt", TensorPickle("pos_embed", 4, [64, 4], [0, 1]), 16);
        var e = Refused(p, () => Checkpoint.Load(p), "stride 0");
        Assert.Equal("pos_embed", e.TensorName);
    }

    [Fact]
    public void PickleViewLargerThanItsStorageIsRefused()
    {
        var p = Pt("overlap.pt", TensorPickle("pos_embed", 8, [4, 4], [1, 1]), 32);
        Assert.Equal("pos_embed", Refused(p, () => Checkpoint.Load(p), "overlapping views are refused").TensorName);
        var q = Pt("outside.pt", TensorPickle("pos_embed", 4, [8], [1]), 16);
        Refused(q, () => Checkpoint.Load(q), "outside its storage");
    }

    [Fact]
    public void PickleZipBombedStorageIsRefusedBeforeInflating()
    {
        // The pickle says 4 floats; the storage entry inflates to 256 MiB of zeros (about 256 KiB in the file).
        var p = Pt("bomb.pt", TensorPickle("pos_embed", 4, [4], [1]), 256L << 20);
        Assert.InRange(new FileInfo(p).Length, 0, 4L << 20);
        Refused(p, () => Checkpoint.Load(p), "but the pickle declares 4 FloatStorage elements");
    }

    /// <summary>Rewrites the inflated size a zip declares for <paramref name="entry"/> (local header and central
    /// directory), leaving its compressed data as it is: a header that lies about what the data gives.</summary>
    private static void DeclareSize(string zipPath, string entry, uint size)
    {
        var b = File.ReadAllBytes(zipPath);
        var name = Encoding.UTF8.GetBytes(entry);
        int patched = 0;
        for (int i = 0; i + 46 < b.Length; i++)
        {
            uint sig = BitConverter.ToUInt32(b, i);
            int nameAt = sig == 0x04034b50 ? i + 30 : sig == 0x02014b50 ? i + 46 : -1;
            int sizeAt = sig == 0x04034b50 ? i + 22 : i + 24;
            if (nameAt < 0 || BitConverter.ToUInt16(b, sig == 0x04034b50 ? i + 26 : i + 28) != name.Length
                || !b.AsSpan(nameAt, name.Length).SequenceEqual(name)) continue;
            BitConverter.GetBytes(size).CopyTo(b, sizeAt);
            patched++;
        }
        Assert.Equal(2, patched);
        File.WriteAllBytes(zipPath, b);
    }

    private static double Ratio(string zipPath, string entry)
    {
        using var zip = ZipFile.OpenRead(zipPath);
        var e = zip.GetEntry(entry)!;
        return (double)e.Length / e.CompressedLength;
    }

    [Fact]
    public void PickleZipBombOfAUsedStorageIsRefusedBeforeInflating()
    {
        // The pickle and the entry agree (64 Mi floats, 256 MiB): a real deflate bomb of zeros, about 250 KiB on disk.
        var p = Pt("used-bomb.pt", TensorPickle("pos_embed", 64 << 20, [64 << 20], [1]), 256L << 20, CompressionLevel.SmallestSize);
        Assert.InRange(Ratio(p, "archive/data/0"), 1000, 1032);
        var e = Refused(p, () => Checkpoint.Load(p), "zip entry 'archive/data/0' declares 268435456 bytes from ");
        Assert.Equal("pos_embed", e.TensorName);
        Assert.Contains("past the 1000:1 that real tensor data compresses to (a zip bomb); refused before inflating it", e.Message);

        // A header that lies: 4 floats stored, 16 bytes, declared as 1 GiB (which the pickle then agrees with).
        var q = Pt("liar.pt", TensorPickle("pos_embed", 1 << 28, [1 << 28], [1]), 16, CompressionLevel.NoCompression);
        DeclareSize(q, "archive/data/0", 1u << 30);
        Assert.Equal("pos_embed", Refused(q, () => Checkpoint.Load(q), "zip entry 'archive/data/0' declares 1073741824 bytes from 16 compressed (67108864:1)").TensorName);

        // data.pkl itself bombed: refused before the pickle program is inflated.
        var r = Path.Combine(_tmp, "pkl-bomb.pt");
        using (var zip = ZipFile.Open(r, ZipArchiveMode.Create))
        using (var s = zip.CreateEntry("archive/data.pkl", CompressionLevel.SmallestSize).Open())
            s.Write(new byte[64 << 20]);
        Assert.Null(Refused(r, () => Checkpoint.Load(r), "zip entry 'archive/data.pkl' declares 67108864 bytes").TensorName);
    }

    [Fact]
    public void NpzZipBombOfAUsedArrayIsRefusedBeforeInflating()
    {
        // cls_token is a name a model uses, so the unused-array refusal does not apply; its ratio does.
        var p = Path.Combine(_tmp, "used-bomb.npz");
        using (var zip = ZipFile.Open(p, ZipArchiveMode.Create))
        using (var s = zip.CreateEntry("cls_token.npy", CompressionLevel.SmallestSize).Open())
        {
            s.Write(NpyBytes("(1, 1, 67108864)", 0));
            var chunk = new byte[1 << 20];
            for (int i = 0; i < 256; i++) s.Write(chunk);
        }
        Assert.InRange(new FileInfo(p).Length, 0, 1L << 20);
        var e = Refused(p, () => Checkpoint.Load(p), "zip entry 'cls_token.npy' declares 268435584 bytes from ");
        Assert.Equal("cls_token", e.TensorName);
        Assert.EndsWith("refused before inflating it (CheckpointLimits.MaxCompressionRatio)", e.Message);

        // A lying header on a used array of a real checkpoint: declared 1 GiB, refused from the zip directory.
        var q = Path.Combine(_tmp, "liar.npz");
        File.Copy(TestData.Small("vit_tiny48", "model_google.npz"), q);
        string victim;
        using (var zip = ZipFile.Open(q, ZipArchiveMode.Read)) victim = zip.Entries.First(x => x.FullName.EndsWith("cls.npy", StringComparison.Ordinal)).FullName;
        DeclareSize(q, victim, 1u << 30);
        Assert.Equal(victim[..^4], Refused(q, () => Checkpoint.Load(q), $"zip entry '{victim}' declares 1073741824 bytes").TensorName);

        // Ordinary entries pass: the unedited checkpoint (stored, 1:1), and the same arrays deflated.
        var d = Path.Combine(_tmp, "deflated.npz");
        using (var src = ZipFile.OpenRead(TestData.Small("vit_tiny48", "model_google.npz")))
        using (var dst = ZipFile.Open(d, ZipArchiveMode.Create))
            foreach (var x in src.Entries)
            {
                using var i = x.Open();
                using var o = dst.CreateEntry(x.FullName, CompressionLevel.SmallestSize).Open();
                i.CopyTo(o);
            }
        Assert.Equal(64, Checkpoint.Load(d).Config.EmbedDim);
    }

    // ---- .npz ----

    [Fact]
    public void NpzBombWithAnUnusedArrayIsRefusedBeforeInflating()
    {
        var p = Path.Combine(_tmp, "bomb.npz");
        File.Copy(TestData.Small("vit_tiny48", "model_google.npz"), p);
        using (var zip = ZipFile.Open(p, ZipArchiveMode.Update))
        {
            using var s = zip.CreateEntry("unused_extra.npy", CompressionLevel.Fastest).Open();
            var header = Encoding.Latin1.GetBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (67108864,), }".PadRight(117) + "\n");
            s.Write([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0, (byte)header.Length, 0]);
            s.Write(header);
            var chunk = new byte[1 << 20];
            for (int i = 0; i < 256; i++) s.Write(chunk);
        }
        var e = Refused(p, () => Checkpoint.Load(p), "refused before inflating it");
        Assert.Equal("unused_extra", e.TensorName);
    }

    [Fact]
    public void NpzWithTimmNamesRefusesAnUnknownArrayBeforeInflating()
    {
        var p = Path.Combine(_tmp, "timm-bomb.npz");
        using (var zip = ZipFile.Open(p, ZipArchiveMode.Create))
        {
            using (var s = zip.CreateEntry("cls_token.npy").Open()) s.Write(NpyBytes("(1, 1, 4)", 4));
            using (var s = zip.CreateEntry("extra.npy", CompressionLevel.Fastest).Open())
            {
                s.Write(NpyBytes("(67108864,)", 0));
                var chunk = new byte[1 << 20];
                for (int i = 0; i < 256; i++) s.Write(chunk);
            }
        }
        Assert.Equal("extra", Refused(p, () => Checkpoint.Load(p), "refused before inflating it").TensorName);
    }

    private static byte[] NpyBytes(string shape, int floats)
    {
        var header = Encoding.Latin1.GetBytes($"{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}".PadRight(117) + "\n");
        return [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0, (byte)header.Length, 0, .. header, .. new byte[floats * 4]];
    }

    // ---- safetensors ----

    /// <summary>A safetensors file from a raw header; data is zeros up to <paramref name="dataBytes"/> (sparse).</summary>
    private string Raw(string file, string headerJson, long dataBytes, Action<FileStream>? fill = null)
    {
        var path = Path.Combine(_tmp, file);
        var h = Encoding.UTF8.GetBytes(headerJson);
        using var f = File.Create(path);
        f.Write(BitConverter.GetBytes((long)h.Length));
        f.Write(h);
        fill?.Invoke(f);
        f.SetLength(8 + h.Length + dataBytes);
        return path;
    }

    [Fact]
    public void SafetensorsTensorOverTwoGibIsRefused()
    {
        long n = (1L << 29) + 16; // floats: 2 GiB + 64 bytes
        var p = Raw("big.safetensors", $"{{\"w\":{{\"dtype\":\"F32\",\"shape\":[{n}],\"data_offsets\":[0,{n * 4}]}}}}", n * 4);
        Assert.Equal("w", Refused(p, () => SafeTensors.Read(p), "more than the").TensorName);
    }

    [Fact]
    public void SafetensorsShapeWhoseByteSizeWrapsIsRefused()
    {
        var p = Raw("wrap.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[65536,65536,65536,65536],\"data_offsets\":[0,0]}}", 0);
        Assert.Equal("w", Refused(p, () => SafeTensors.Read(p), "overflows 64-bit arithmetic").TensorName);
        var q = Raw("wrap2.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1073741824,1073741824,4],\"data_offsets\":[0,0]}}", 0);
        Refused(q, () => SafeTensors.Read(q), "needs more than 2^63 bytes");
    }

    [Fact]
    public void SafetensorsOverlappingOffsetsAreRefused()
    {
        var p = Raw("overlap.safetensors",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}", 24);
        Assert.Equal("b", Refused(p, () => SafeTensors.Read(p), "overlaps").TensorName);
        var g = Raw("gap.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}", 24);
        Refused(g, () => SafeTensors.Read(g), "gap");
    }

    [Fact]
    public void SafetensorsDuplicateKeysAreRefused()
    {
        var p = Raw("dup.safetensors",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[16,32]}}", 32);
        Assert.Equal("a", Refused(p, () => SafeTensors.Read(p), "names this tensor twice").TensorName);
    }

    [Fact]
    public void SafetensorsIntegerDataOnAWeightIsRefused()
    {
        var p = Raw("i32.safetensors", "{\"patch_embed.proj.weight\":{\"dtype\":\"I32\",\"shape\":[8,3,4,4],\"data_offsets\":[0,1536]}}", 1536);
        Assert.Equal("patch_embed.proj.weight", Refused(p, () => Checkpoint.Load(p), "dtype I32 where a floating-point weight must be").TensorName);
    }

    [Fact]
    public void SafetensorsUnusedHugeTensorIsRefusedBeforeReading()
    {
        // The real model's tensors, then a 1.5 GB tensor no naming uses (sparse: nothing is written for it).
        var w = SafeTensors.Read(Source);
        var sb = new StringBuilder("{");
        long at = 0;
        foreach (var (name, a) in w.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            sb.Append($"\"{name}\":{{\"dtype\":\"F32\",\"shape\":[{string.Join(",", a.Shape)}],\"data_offsets\":[{at},{at + a.Data.Length * 4L}]}},");
            at += a.Data.Length * 4L;
        }
        const long extra = 375_000_000;
        sb.Append($"\"unused_extra\":{{\"dtype\":\"F32\",\"shape\":[{extra}],\"data_offsets\":[{at},{at + extra * 4}]}}}}");
        var p = Raw("unused.safetensors", sb.ToString(), at + extra * 4, f =>
        {
            foreach (var (_, a) in w.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                f.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(a.Data.AsSpan()));
        });
        Assert.Equal("unused_extra", Refused(p, () => Checkpoint.Load(p, new LoadOptions { Heads = 2 }), "refused before reading its 1500000000 bytes").TensorName);
    }

    // ---- the total budget ----

    [Theory]
    [InlineData("model.safetensors")]
    [InlineData("model_google.npz")]
    [InlineData("vit_tiny48.pt")]
    public void TotalBytesBudgetIsCheckedBeforeAllocating(string file)
    {
        var path = file.EndsWith(".pt", StringComparison.Ordinal) ? Path.Combine(AppContext.BaseDirectory, "Data", "pt", file) : TestData.Small("vit_tiny48", file);
        var e = Refused(path, () => Checkpoint.Load(path, new LoadOptions { Heads = 2, MaxTotalBytes = 20_000 }), "passes the budget of 20000 bytes", maxAllocated: 1L << 20);
        Assert.NotNull(e.TensorName);
        Assert.NotNull(Checkpoint.Load(path, new LoadOptions { Heads = 2, MaxTotalBytes = 64L << 20 }));
    }

    [Fact]
    public void OrphanTemporaryFilesOfDeadWritersAreRemoved()
    {
        var target = Path.Combine(_tmp, "model.safetensors");
        var dead = Path.Combine(_tmp, $".model.safetensors.{int.MaxValue - 7}.{Guid.NewGuid():N}.tmp"); // no such process
        var live = Path.Combine(_tmp, $".model.safetensors.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        var other = Path.Combine(_tmp, $".other.safetensors.{int.MaxValue - 7}.{Guid.NewGuid():N}.tmp");
        foreach (var f in new[] { dead, live, other }) File.WriteAllBytes(f, [1, 2, 3]);
        SafeTensors.Write(target, new Dictionary<string, HostArray> { ["w"] = new([2], [1f, 2f]) });
        Assert.False(File.Exists(dead));
        Assert.True(File.Exists(live));
        Assert.True(File.Exists(other));
        Assert.Equal([1f, 2f], SafeTensors.Read(target)["w"].Data);
    }

    // ---- .npy ----

    [Fact]
    public void NpyShapeThatOverflowsIsATypedError()
    {
        var p = Path.Combine(_tmp, "huge.npy");
        var header = Encoding.Latin1.GetBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1073741824, 1073741824, 4), }".PadRight(117) + "\n");
        File.WriteAllBytes(p, [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0, (byte)header.Length, 0, .. header, 0, 0, 0, 0]);
        Refused(p, () => Npy.Read(p), "truncated");
        var q = Path.Combine(_tmp, "wrap.npy");
        header = Encoding.Latin1.GetBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2147483647, 2147483647, 2147483647), }".PadRight(117) + "\n");
        File.WriteAllBytes(q, [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0, (byte)header.Length, 0, .. header]);
        Refused(q, () => Npy.Read(q), "overflows 64-bit arithmetic");
    }
}

/// <summary>Weights with NaN/Inf and Hugging Face configs that lie: refused at load, naming the tensor or the key.</summary>
public class HostileConfigTests : IDisposable
{
    private readonly string _tmp = Directory.CreateTempSubdirectory("vitsharp-hostile-cfg-").FullName;

    public void Dispose() => Directory.Delete(_tmp, recursive: true);

    [Theory]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    [InlineData(float.NegativeInfinity)]
    public void NonFiniteWeightsAreRefusedByNameUnlessAllowed(float bad)
    {
        var w = SafeTensors.Read(TestData.Small("vit_tiny48", "model.safetensors"));
        w["blocks.1.mlp.fc1.weight"].Data[17] = bad;
        var p = Path.Combine(_tmp, "nan.safetensors");
        SafeTensors.Write(p, w);
        var e = Assert.Throws<CheckpointException>(() => Checkpoint.Load(p, new LoadOptions { Heads = 2 }));
        Assert.Equal("blocks.1.mlp.fc1.weight", e.TensorName);
        Assert.Contains("1 non-finite values", e.Message);
        Assert.Contains("at element 17", e.Message);
        Assert.Equal(p, e.File);
        var ok = Checkpoint.Load(p, new LoadOptions { Heads = 2, AllowNonFinite = true });
        Assert.Equal(bad, ok.Weights["blocks.1.mlp.fc1.weight"].Data[17]);
    }

    [Fact]
    public void NonFiniteOutputsAreReportedNotPrintedAsAClass()
    {
        var w = SafeTensors.Read(TestData.Small("vit_tiny48", "model.safetensors"));
        w["head.bias"].Data[3] = float.NaN;
        var p = Path.Combine(_tmp, "nan-head.safetensors");
        SafeTensors.Write(p, w);
        using var c = VitSharp.Inference.Classifier.Load(p, new LoadOptions { Heads = 2, AllowNonFinite = true });
        var image = new VitSharp.Data.Image(48, 48, 3, new byte[48 * 48 * 3]);
        var e = Assert.ThrowsAny<VitSharpException>(() => c.Classify(image));
        Assert.Contains("not finite (NaN at class 3 for image 0)", e.Message);
    }

    private string HfFolder(Func<string, string> edit)
    {
        var dir = Path.Combine(_tmp, "hf" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        var src = TestData.Small("vit_tiny48", "hf");
        foreach (var f in Directory.GetFiles(src))
            if (f.EndsWith(".json", StringComparison.Ordinal) || f.EndsWith(".safetensors", StringComparison.Ordinal)) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
        var cfg = Path.Combine(dir, "config.json");
        File.WriteAllText(cfg, edit(File.ReadAllText(cfg)));
        return dir;
    }

    [Theory]
    [InlineData("\"layer_norm_eps\": 1e-12", "\"layer_norm_eps\": -1", "'layer_norm_eps' must be in (0, 1), not -1")]
    [InlineData("\"num_attention_heads\": 2", "\"num_attention_heads\": \"three\"", "'num_attention_heads' must be an integer, not \"three\"")]
    [InlineData("\"layer_norm_eps\": 1e-12", "\"layer_norm_eps\": \"abc\"", "'layer_norm_eps' must be a number, not \"abc\"")]
    [InlineData("\"hidden_act\": \"gelu\"", "\"hidden_act\": 3", "'hidden_act' must be a string, not 3")]
    [InlineData("\"hidden_size\": 64", "\"hidden_size\": 768", "'hidden_size' is 768, but the weights have width 64")]
    [InlineData("\"image_size\": 48", "\"image_size\": 224", "'image_size' is 224, but the weights have a position embedding for image size 48")]
    [InlineData("\"patch_size\": 16", "\"patch_size\": 14", "'patch_size' is 14, but the weights have patch size 16")]
    [InlineData("\"num_hidden_layers\": 2", "\"num_hidden_layers\": 12", "'num_hidden_layers' is 12, but the weights have layers 2")]
    public void HuggingFaceConfigErrorsNameTheKey(string from, string to, string expected)
    {
        var dir = HfFolder(t => { Assert.Contains(from, t); return t.Replace(from, to); });
        var e = Assert.Throws<CheckpointException>(() => Checkpoint.Load(dir));
        Assert.Equal(Path.Combine(dir, "config.json"), e.File);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void MisspeltRecipeKeyIsRefusedWithASuggestion()
    {
        var e = Assert.Throws<ArgumentException>(() => VitSharp.Data.Transforms.PreprocessRecipe.Parse("""{"name": "mine", "CropPct": 0.9}"""));
        Assert.StartsWith("unknown recipe key 'CropPct' (did you mean 'crop_pct'?)", e.Message);
        Assert.Equal(0.9, VitSharp.Data.Transforms.PreprocessRecipe.Parse("""{"crop_pct": 0.9}""").CropPct);
    }

    [Fact]
    public void TruncatedTarGzDatasetNamesTheFile()
    {
        var tar = Path.Combine(_tmp, "data.tar");
        using (var w = new System.Formats.Tar.TarWriter(File.Create(tar)))
            for (int i = 0; i < 4; i++)
                w.WriteEntry(new System.Formats.Tar.PaxTarEntry(System.Formats.Tar.TarEntryType.RegularFile, $"train/cls{i % 2}/{i}.png")
                    { DataStream = new MemoryStream(new byte[5000 + i]) });
        var gz = Path.Combine(_tmp, "data.tar.gz");
        using (var o = File.Create(gz))
        using (var z = new GZipStream(o, CompressionLevel.Fastest))
            z.Write(File.ReadAllBytes(tar));
        var cut = Path.Combine(_tmp, "cut.tar.gz");
        File.WriteAllBytes(cut, File.ReadAllBytes(gz)[..(int)(new FileInfo(gz).Length / 2)]);
        var e = Assert.ThrowsAny<VitSharpException>(() => VitSharp.Data.Datasets.FileListDataset.FromArchive(cut, "train", (b, n) => throw new InvalidOperationException()));
        Assert.StartsWith($"{cut}: corrupt or truncated archive", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void ArchivesCutAnywhereAreOneLineNamingTheFile()
    {
        var tar = Path.Combine(_tmp, "all.tar");
        using (var w = new System.Formats.Tar.TarWriter(File.Create(tar)))
            for (int i = 0; i < 4; i++)
                w.WriteEntry(new System.Formats.Tar.PaxTarEntry(System.Formats.Tar.TarEntryType.RegularFile, $"train/cls{i % 2}/{i}.png")
                    { DataStream = new MemoryStream(new byte[700 + i]) });
        var gz = Path.Combine(_tmp, "all.tar.gz");
        using (var o = File.Create(gz))
        using (var z = new GZipStream(o, CompressionLevel.Fastest))
            z.Write(File.ReadAllBytes(tar));
        VitSharp.Data.Datasets.ImageDecoder never = (b, n) => throw new InvalidOperationException("not decoded while listing");
        Assert.Equal(4, VitSharp.Data.Datasets.FileListDataset.FromArchive(gz, "train", never).Count);
        Assert.Equal(4, VitSharp.Data.Datasets.FileListDataset.FromArchive(tar, "train", never).Count);
        // Cut anywhere (the tar at every half block, so at every entry's end too): refused naming the file, unless
        // all the data is there (the cut fell in the final zero blocks or the gzip trailer).
        var accepted = new List<int>();
        int refused = 0;
        foreach (var (source, step) in new[] { (gz, 7), (tar, 256) })
        {
            var bytes = File.ReadAllBytes(source);
            for (int cut = step; cut < bytes.Length; cut += step)
            {
                var p = Path.Combine(_tmp, $"cut{cut}{(source == gz ? ".tar.gz" : ".tar")}");
                File.WriteAllBytes(p, bytes[..cut]);
                try
                {
                    accepted.Add(VitSharp.Data.Datasets.FileListDataset.FromArchive(p, "train", never).Count);
                }
                catch (VitSharpException e)
                {
                    Assert.StartsWith($"{p}: corrupt or truncated archive (", e.Message);
                    Assert.DoesNotContain('\n', e.Message);
                    refused++;
                }
                File.Delete(p);
            }
        }
        Assert.All(accepted, n => Assert.Equal(4, n));
        Assert.InRange(accepted.Count, 1, 6);
        Assert.InRange(refused, 80, 10_000);

        // A tar that stops right after an entry (no end-of-archive blocks) may be missing entries: refused (a plain
        // .tar, read from a seekable file, once gave the entries before the cut, silently).
        var bare = Path.Combine(_tmp, "bare.tar");
        File.WriteAllBytes(bare, File.ReadAllBytes(tar)[..^1024]);
        var err = Assert.Throws<VitSharpException>(() => VitSharp.Data.Datasets.FileListDataset.FromArchive(bare, "train", never));
        Assert.StartsWith($"{bare}: corrupt or truncated archive (", err.Message);
    }

    [Fact]
    public void TheUneditedHuggingFaceFolderStillLoads() => Assert.Equal(64, Checkpoint.Load(HfFolder(t => t)).Config.EmbedDim);
}
