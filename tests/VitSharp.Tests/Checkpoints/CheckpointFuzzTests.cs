using System.Diagnostics;
using VitSharp.Checkpoints;

namespace VitSharp.Tests.Checkpoints;

/// <summary>Mutated checkpoints and arrays (bit flips, truncations, spliced digits in headers): every case loads or
/// raises a VitSharpException — never another exception type — within bounded time.</summary>
public class CheckpointFuzzTests : IDisposable
{
    private readonly string _tmp = Directory.CreateTempSubdirectory("vitsharp-fuzz-").FullName;

    public void Dispose() => Directory.Delete(_tmp, recursive: true);

    private static string Pt(string name) => Path.Combine(AppContext.BaseDirectory, "Data", "pt", name);

    public static TheoryData<string> Sources => new()
    {
        TestData.Small("vit_tiny48", "model.safetensors"),
        TestData.Small("vit_tiny48", "model_google.npz"),
        TestData.Small("vit_tiny48", "input.npy"),
        Pt("vit_tiny48.pt"),
    };

    [Theory]
    [MemberData(nameof(Sources))]
    public void MutatedFilesGiveTypedErrors(string source)
    {
        var bytes = File.ReadAllBytes(source);
        var rng = new Random(source.Length);
        int headerEnd = Math.Min(bytes.Length, 1024); // most mutations land where the structure is
        var sw = Stopwatch.StartNew();
        int cases = int.TryParse(Environment.GetEnvironmentVariable("VITSHARP_FUZZ_CASES"), out var n) ? n : 150;
        for (int i = 0; i < cases; i++)
        {
            var copy = (byte[])bytes.Clone();
            switch (i % 4)
            {
                case 0: copy = copy[..rng.Next(copy.Length)]; break;
                case 1: for (int j = 0; j < 4; j++) copy[rng.Next(headerEnd)] ^= (byte)(1 << rng.Next(8)); break;
                case 2: for (int j = 0; j < 3; j++) copy[rng.Next(headerEnd)] = (byte)"0123456789-9,[]{}\"e"[rng.Next(19)]; break;
                default: for (int j = 0; j < 8; j++) copy[rng.Next(copy.Length)] ^= (byte)(1 << rng.Next(8)); break;
            }
            var p = Path.Combine(_tmp, $"f{i}{Path.GetExtension(source)}");
            File.WriteAllBytes(p, copy);
            try
            {
                if (source.EndsWith(".npy", StringComparison.Ordinal)) Npy.Read(p);
                else Checkpoint.Load(p, new LoadOptions { Heads = 2 });
            }
            catch (VitSharpException e) { Assert.DoesNotContain('\n', e.Message); }
            catch (Exception e) { Assert.Fail($"case {i} ({i % 4}): {e.GetType().Name}: {e.Message}"); }
        }
        Assert.InRange(sw.Elapsed.TotalSeconds, 0, 60);
    }

    [Fact]
    public void HuggingFaceConfigWithHostileValuesGivesTypedErrors()
    {
        var src = TestData.Small("vit_tiny48", "hf");
        var original = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(src, "config.json")))!.AsObject();
        string[] values = ["\"three\"", "-1", "0", "null", "[]", "{}", "1e308", "true", "2.5", "-2147483649"];
        int n = 0;
        foreach (var key in original.Select(kv => kv.Key).ToList())
            foreach (var v in values)
            {
                var dir = Path.Combine(_tmp, $"hf{n++}");
                Directory.CreateDirectory(dir);
                File.Copy(Path.Combine(src, "model.safetensors"), Path.Combine(dir, "model.safetensors"));
                var cfg = original.DeepClone().AsObject();
                cfg[key] = System.Text.Json.Nodes.JsonNode.Parse(v);
                File.WriteAllText(Path.Combine(dir, "config.json"), cfg.ToJsonString());
                try { using var m = Checkpoint.Load(dir).CreateModel(VitSharp.Backends.Cpu.CpuBackend.Instance); }
                catch (VitSharpException e) { Assert.DoesNotContain('\n', e.Message); }
                catch (Exception e) { Assert.Fail($"{key}={v}: {e.GetType().Name}: {e.Message}"); }
                Directory.Delete(dir, true);
            }
    }

    [Fact]
    public void MutatedHuggingFaceConfigBytesGiveTypedErrors()
    {
        var src = TestData.Small("vit_tiny48", "hf");
        var dir = Path.Combine(_tmp, "hf");
        Directory.CreateDirectory(dir);
        File.Copy(Path.Combine(src, "model.safetensors"), Path.Combine(dir, "model.safetensors"));
        var sw = Stopwatch.StartNew();
        int n = 0, refused = 0;
        foreach (var m in VitSharp.Tests.Training.ConfigFuzzTests.Mutations(File.ReadAllBytes(Path.Combine(src, "config.json")), 5, 150))
        {
            File.WriteAllBytes(Path.Combine(dir, "config.json"), m);
            try { using var model = Checkpoint.Load(dir).CreateModel(VitSharp.Backends.Cpu.CpuBackend.Instance); }
            catch (VitSharpException e) { refused++; Assert.DoesNotContain('\n', e.Message); }
            catch (Exception e) { Assert.Fail($"mutation {n}: {e.GetType().Name}: {e.Message}: {System.Text.Encoding.UTF8.GetString(m)}"); }
            n++;
        }
        Assert.InRange(refused, 50, 150);
        Assert.InRange(sw.Elapsed.TotalSeconds, 0, 30);
    }
}
