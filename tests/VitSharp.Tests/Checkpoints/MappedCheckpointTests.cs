using VitSharp.Backends.Cpu;
using VitSharp.Checkpoints;
using VitSharp.Inference;
using VitSharp.Models;
using VitSharp.Tensors;
using VitSharp.Cli;

namespace VitSharp.Tests.Checkpoints;

/// <summary>
/// Memory-mapped checkpoints (issue 13 §3): <see cref="Classifier.Load"/> maps a safetensors file and packs or quantises
/// the weights from its pages. The outputs must be those of the copying path bit for bit, bad files must give the same
/// one-line errors, the mapping must go when the classifier does, and the packed weights' floats are held once.
/// </summary>
public class MappedCheckpointTests : IDisposable
{
    private readonly string _tmp = Directory.CreateTempSubdirectory("vitsharp-mmap-").FullName;
    private static string Small => TestData.Small("vit_tiny48", "model.safetensors");
    private static readonly LoadOptions Copy = new() { Heads = 2, MapWeights = false };
    private static readonly LoadOptions Map = new() { Heads = 2, MapWeights = true };

    public void Dispose() => Directory.Delete(_tmp, recursive: true);

    private static HostArray Input(ModelConfig c, int batch = 2)
    {
        var rng = new Random(7);
        var x = new float[batch * c.InChannels * c.ImageSize * c.ImageSize];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        return new HostArray([batch, c.InChannels, c.ImageSize, c.ImageSize], x);
    }

    /// <summary>The f32 test model, the shipped bf16 model, a quantised file of each, and f32 run int8 on load.</summary>
    public static TheoryData<string, bool> Files => new()
    {
        { "small-f32", false }, { "small-f32", true }, { "small-int8", false }, { "shipped-bf16", false }, { "shipped-bf16", true }, { "shipped-int8", false },
    };

    private string PathOf(string file) => file switch
    {
        "small-f32" => Small,
        "shipped-bf16" => DefaultModel.BundledPath,
        "small-int8" => Quantized(Small, Copy),
        "shipped-int8" => Quantized(DefaultModel.BundledPath, null),
        _ => throw new ArgumentException(file),
    };

    private string Quantized(string from, LoadOptions? o)
    {
        var p = Path.Combine(_tmp, Path.GetFileNameWithoutExtension(from) + ".int8.safetensors");
        if (!File.Exists(p)) Quantization.QuantizeFile(from, p, o);
        return p;
    }

    private static LoadOptions Options(string file, bool mapped) =>
        file.StartsWith("small", StringComparison.Ordinal) ? (mapped ? Map : Copy) : new LoadOptions { MapWeights = mapped };

    [Theory]
    [MemberData(nameof(Files))]
    public void MappedLoadGivesBitIdenticalOutputsToTheCopyingPath(string file, bool int8OnLoad)
    {
        var path = PathOf(file);
        DType? dtype = int8OnLoad ? DType.I8 : null;
        using var copied = Classifier.Load(path, Options(file, mapped: false), dtype: dtype);
        using var mapped = Classifier.Load(path, Options(file, mapped: true), dtype: dtype);
        Assert.False(copied.Checkpoint.IsMapped);
        Assert.True(mapped.Checkpoint.IsMapped);
        Assert.Equal(copied.Model.IsInt8, mapped.Model.IsInt8);
        Assert.Equal(int8OnLoad || file.EndsWith("int8", StringComparison.Ordinal), mapped.Model.IsInt8);
        var x = Input(mapped.Model.Config);
        var a = copied.Model.Run(x).Data;
        var b = mapped.Model.Run(x).Data;
        Assert.Equal(a, b);
        Assert.Contains(a, v => v != 0);
        // every parameter reads back as the copying path holds it, the deferred ones from the file
        var hostA = copied.Model.Parameters.ToHost();
        var hostB = mapped.Model.Parameters.ToHost();
        foreach (var (name, values) in hostA)
        {
            Assert.Equal(values.Data, hostB[name].Data);
            Assert.Equal(values.Data, mapped.Model.HostFloats(mapped.Model.Parameters[name]));
        }
    }

    [Fact]
    public void PackedAndInt8WeightsAreHeldOnce()
    {
        using var fp32 = Classifier.Load(Small, Map);
        var p = fp32.Model.Parameters;
        var matrices = p.Layout.Where(l => l.Shape.Length >= 2 && l.Name.EndsWith(".weight", StringComparison.Ordinal)).Select(l => l.Name).ToList();
        Assert.NotEmpty(matrices);
        // their floats are only in the file (the packed copy is what the products read), never copied out of it
        Assert.Equal(matrices.Order(), p.Deferred.Order());
        Assert.All(matrices, n => Assert.False(fp32.Checkpoint.Weights[n].IsMaterialized));
        Assert.All(fp32.Checkpoint.Weights.Values, w => Assert.False(w.IsMaterialized));

        using var int8 = Classifier.Load(Quantized(Small, Copy), Map);
        var q = int8.Model.Parameters;
        Assert.True(int8.Model.IsInt8);
        Assert.Subset(q.Deferred.ToHashSet(), int8.Model.Int8Targets.ToHashSet());
        Assert.All(int8.Model.Int8Targets, n => Assert.False(int8.Checkpoint.Weights[n].IsMaterialized)); // no fp32 master
        // the copying path holds them as the checkpoint's floats (still not a second time in the buffer)
        using var copied = Classifier.Load(Small, Copy);
        Assert.Equal(matrices.Order(), copied.Model.Parameters.Deferred.Order());
        Assert.All(copied.Checkpoint.Weights.Values, w => Assert.True(w.IsMaterialized));
    }

    [Fact]
    public void DeferredWeightsComeBackWhenTheirPackedOrInt8CopyGoes()
    {
        using var reference = Classifier.Load(Small, Copy);
        using var mapped = Classifier.Load(Small, Map);
        var x = Input(mapped.Model.Config);
        // int8 after the fact: quantised from the file's values, as the copying model quantises its own
        reference.Model.UseInt8();
        mapped.Model.UseInt8();
        Assert.Equal(reference.Model.Run(x).Data, mapped.Model.Run(x).Data);
        // a plain Load replaces everything: the products read the buffer again
        var weights = SafeTensors.Read(Small);
        mapped.Model.Load(weights, "again");
        reference.Model.Load(weights, "again");
        Assert.Empty(mapped.Model.Parameters.Deferred);
        Assert.Equal(reference.Model.Run(x).Data, mapped.Model.Run(x).Data);
    }

    [Fact]
    public void AModelOutlivesItsMappedCheckpoint()
    {
        var ckpt = Checkpoint.Load(Small, Map);
        using var reference = Classifier.Load(Small, Copy);
        using var model = VisionModel.Create(ckpt.Config, CpuBackend.Instance);
        model.LoadForInference(ckpt.Weights, ckpt.Path);
        var w = ckpt.Weights["blocks.0.mlp.fc1.weight"];
        ckpt.Dispose();
        ckpt.Dispose(); // twice is once
        var x = Input(model.Config);
        Assert.Equal(reference.Model.Run(x).Data, model.Run(x).Data);
        // the model's own lease keeps the deferred values readable
        Assert.Equal(reference.Model.HostFloats(reference.Model.Parameters["blocks.0.mlp.fc1.weight"]),
            model.HostFloats(model.Parameters["blocks.0.mlp.fc1.weight"]));
        model.Dispose();
        // with every holder gone, an array never read is a typed error, not a crash
        Assert.Throws<ObjectDisposedException>(() => w.Data);
    }

    [Fact]
    public void EveryTruncationIsTheSameOneLineErrorMappedOrCopied()
    {
        var bytes = File.ReadAllBytes(Small);
        foreach (var n in new[] { 0, 3, 8, 9, 100, 1000, bytes.Length / 2, bytes.Length - 1 })
        {
            var p = Path.Combine(_tmp, $"t{n}.safetensors");
            File.WriteAllBytes(p, bytes[..n]);
            var copied = Assert.Throws<CheckpointException>(() => Classifier.Load(p, Copy));
            var mapped = Assert.Throws<CheckpointException>(() => Classifier.Load(p, Map));
            Assert.Equal(copied.Message, mapped.Message);
            Assert.Equal(p, mapped.File);
            Assert.DoesNotContain('\n', mapped.Message);
            Assert.False(IsMapped(p)); // nothing left mapped by a refused file
        }
    }

    [Fact]
    public void CorruptHeaderAndNonFiniteWeightsAreTheSameErrorsMapped()
    {
        var bytes = File.ReadAllBytes(Small);
        for (int i = 8; i < 200; i += 7) bytes[i] = (byte)'#';
        var corrupt = Path.Combine(_tmp, "corrupt.safetensors");
        File.WriteAllBytes(corrupt, bytes);
        var e = Assert.Throws<CheckpointException>(() => Classifier.Load(corrupt, Map));
        Assert.Contains("corrupt", e.Message);
        Assert.Equal(Assert.Throws<CheckpointException>(() => Classifier.Load(corrupt, Copy)).Message, e.Message);

        foreach (var dtype in new[] { "F32", "BF16" })
        {
            var w = SafeTensors.Read(Small);
            w["blocks.1.mlp.fc1.weight"].Data[17] = float.NaN;
            var p = Path.Combine(_tmp, $"nan-{dtype}.safetensors");
            SafeTensors.Write(p, w, null, dtype);
            var copied = Assert.Throws<CheckpointException>(() => Checkpoint.Load(p, Copy));
            var mapped = Assert.Throws<CheckpointException>(() => Checkpoint.Load(p, Map));
            Assert.Equal(copied.Message, mapped.Message);
            Assert.Contains("1 non-finite values", mapped.Message);
            Assert.False(IsMapped(p));
        }
    }

    [Fact]
    public void TheMappingIsReleasedWithTheClassifier()
    {
        if (!OperatingSystem.IsLinux()) return; // /proc/self/maps
        var p = Path.Combine(_tmp, "model.safetensors");
        File.Copy(Small, p);
        var classifier = Classifier.Load(p, Map);
        Assert.True(IsMapped(p));
        classifier.Dispose();
        Assert.False(IsMapped(p));
        Assert.False(HasOpenHandle(p)); // nor a descriptor left open
        File.Delete(p);
        Assert.False(File.Exists(p));
    }

    [Fact]
    public void AReplacedFileLeavesTheMappedOneIntact()
    {
        var p = Path.Combine(_tmp, "model.safetensors");
        File.Copy(Small, p);
        using var classifier = Classifier.Load(p, Map);
        using var reference = Classifier.Load(Small, Copy);
        var x = Input(classifier.Model.Config);
        var before = classifier.Model.Run(x).Data;
        // writers rename a new file over the old one (AtomicFile): the mapped inode keeps the old bytes
        var other = SafeTensors.Read(Small);
        foreach (var a in other.Values) Array.Fill(a.Data, 0.5f);
        SafeTensors.Write(p, other);
        Assert.Equal(before, classifier.Model.Run(x).Data);
        Assert.Equal(reference.Model.HostFloats(reference.Model.Parameters["blocks.0.attn.qkv.weight"]),
            classifier.Model.HostFloats(classifier.Model.Parameters["blocks.0.attn.qkv.weight"]));
        if (OperatingSystem.IsLinux()) Assert.True(IsMapped(p)); // "(deleted)": the old inode, still mapped
    }

    [Fact]
    public void TrainingAndPlainLoadsStillCopy()
    {
        using var ckpt = Checkpoint.Load(Small, new LoadOptions { Heads = 2 });
        Assert.False(ckpt.IsMapped);
        Assert.All(ckpt.Weights.Values, w => Assert.True(w.IsMaterialized));
        using var model = ckpt.CreateModel(CpuBackend.Instance);
        Assert.Empty(model.Parameters.Deferred);
    }

    private static bool IsMapped(string path)
    {
        if (!OperatingSystem.IsLinux()) return false;
        var full = Path.GetFullPath(path);
        return File.ReadLines("/proc/self/maps").Any(l => l.Contains(full, StringComparison.Ordinal));
    }

    private static bool HasOpenHandle(string path)
    {
        var full = Path.GetFullPath(path);
        foreach (var fd in Directory.GetFiles("/proc/self/fd"))
        {
            try
            {
                if (new FileInfo(fd).LinkTarget is { } target && target.StartsWith(full, StringComparison.Ordinal)) return true;
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        return false;
    }
}
