using VitSharp.Backends.Cpu;
using VitSharp.Checkpoints;

namespace VitSharp.Tests.Checkpoints;

/// <summary>Files written by torch.save (PyTorch 2.11, bench/peers/make_pt_refs.py) read without executing the pickle.</summary>
public class PyTorchPickleTests : IDisposable
{
    private readonly string _tmp = Directory.CreateTempSubdirectory("vitsharp-pt-").FullName;
    private static string Pt(string name) => Path.Combine(AppContext.BaseDirectory, "Data", "pt", name);

    public void Dispose() => Directory.Delete(_tmp, recursive: true);

    [Fact]
    public void PlainStateDictHasTheSafetensorsValues()
    {
        var expected = SafeTensors.Read(TestData.Small("vit_tiny48", "model.safetensors"));
        var actual = PyTorchPickle.Read(Pt("vit_tiny48.pt"));
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach (var (k, v) in expected)
        {
            Assert.Equal(v.Shape, actual[k].Shape);
            Assert.Equal(v.Data, actual[k].Data);
        }
        var ckpt = Checkpoint.Load(Pt("vit_tiny48.pt"), new LoadOptions { Heads = 2 });
        using var model = ckpt.CreateModel(CpuBackend.Instance);
        var logits = model.Run(Npy.Read(TestData.Small("vit_tiny48", "input.npy")));
        Assert.InRange(TestData.MaxAbsDiff(logits, Npy.Read(TestData.Small("vit_tiny48", "logits.npy"))), 0, 1e-4f);
    }

    [Fact]
    public void TrainingCheckpointIsReadWithoutRunningItsCode()
    {
        const string marker = "/tmp/vitsharp-pickle-executed";
        if (File.Exists(marker)) File.Delete(marker);
        var w = PyTorchPickle.Read(Pt("vit_tiny48_train.pth"));
        Assert.False(File.Exists(marker)); // the os.system call in the pickle was not executed
        var expected = SafeTensors.Read(TestData.Small("vit_tiny48", "model.safetensors"));
        Assert.Equal(expected.Keys.Order(), w.Keys.Order()); // 'state_dict' found, 'module.' stripped
        // bf16 storages widen exactly; the non-contiguous fp32 head weight is gathered through its strides.
        var bf = expected["blocks.0.mlp.fc1.weight"].Data.Select(v => VitSharp.Tensors.BFloat16Convert.ToFloat(VitSharp.Tensors.BFloat16Convert.FromFloat(v)));
        Assert.Equal(bf, w["blocks.0.mlp.fc1.weight"].Data);
        Assert.Equal(expected["head.weight"].Data, w["head.weight"].Data);
    }

    [Fact]
    public void HuggingFaceFolderWithPytorchModelBin()
    {
        var dir = Path.Combine(_tmp, "hf");
        Directory.CreateDirectory(dir);
        File.Copy(TestData.Small("vit_tiny48", "hf", "config.json"), Path.Combine(dir, "config.json"));
        File.Copy(Pt("pytorch_model.bin"), Path.Combine(dir, "pytorch_model.bin"));
        using var model = Checkpoint.Load(dir).CreateModel(CpuBackend.Instance);
        var logits = model.Run(Npy.Read(TestData.Small("vit_tiny48", "input.npy")));
        Assert.InRange(TestData.MaxAbsDiff(logits, Npy.Read(TestData.Small("vit_tiny48", "hf", "logits.npy"))), 0, 1e-4f);
    }

    [Fact]
    public void DamagedFilesRaiseCheckpointExceptions()
    {
        var bytes = File.ReadAllBytes(Pt("vit_tiny48.pt"));
        var rng = new Random(7);
        for (int i = 0; i < 60; i++)
        {
            var copy = (byte[])bytes.Clone();
            if (i % 2 == 0) copy = copy[..rng.Next(copy.Length)];
            else for (int j = 0; j < 8; j++) copy[rng.Next(copy.Length)] ^= (byte)(1 << rng.Next(8));
            var p = Path.Combine(_tmp, $"d{i}.pt");
            File.WriteAllBytes(p, copy);
            try { Checkpoint.Load(p, new LoadOptions { Heads = 2 }); }
            catch (CheckpointException e) { Assert.Equal(p, e.File); }
        }
    }
}
