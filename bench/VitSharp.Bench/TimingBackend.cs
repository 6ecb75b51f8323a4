using System.Diagnostics;
using VitSharp.Backends;
using VitSharp.Tensors;

namespace VitSharp.Bench;

/// <summary>Wraps a backend and adds up the wall time of each operation (for `vit --profile`).</summary>
public sealed class TimingBackend(IBackend inner) : IBackend, IWeightPrepacking, IInt8Linear
{
    public readonly Dictionary<string, (double Ms, double CpuMs, int Calls)> Times = new();
    private readonly Process _self = Process.GetCurrentProcess();

    // Wall time, and CPU time of the whole process (all pool threads; idle ones spin for ~50 µs, then sleep):
    // on a loaded machine the CPU time still shows what an op costs.
    private void Time(string name, Action op)
    {
        _self.Refresh();
        var cpu0 = _self.TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        op();
        double wall = sw.Elapsed.TotalMilliseconds;
        _self.Refresh();
        double cpu = (_self.TotalProcessorTime - cpu0).TotalMilliseconds;
        var (ms, cms, calls) = Times.GetValueOrDefault(name);
        Times[name] = (ms + wall, cms + cpu, calls + 1);
    }

    public void Print()
    {
        double total = Times.Values.Sum(v => v.Ms);
        foreach (var (k, v) in Times.OrderByDescending(kv => kv.Value.Ms))
            Console.WriteLine($"  {k,-28} {v.Ms,9:F1} ms {100 * v.Ms / total,5:F1}%  cpu {v.CpuMs,9:F1} ms  {v.Calls,6} calls");
        Times.Clear();
    }

    public Device Device => inner.Device;
    public DType ComputeType => inner.ComputeType;
    public Tensor Allocate(int[] shape, DType dtype) { Tensor t = null!; Time("Allocate", () => t = inner.Allocate(shape, dtype)); return t; }
    public void CopyFromHost(ReadOnlySpan<float> src, Tensor dst) => inner.CopyFromHost(src, dst);
    public void CopyToHost(Tensor src, Span<float> dst) => inner.CopyToHost(src, dst);
    public void Synchronize() => inner.Synchronize();
    public void Zero(Tensor x) => inner.Zero(x);
    public void Linear(Tensor x, Tensor w, Tensor? bias, Tensor y, Activation act = Activation.None, bool accumulate = false) =>
        Time($"Linear {w.Dim(0)}x{w.Dim(1)} {act}", () => inner.Linear(x, w, bias, y, act, accumulate));
    public void LayerNorm(Tensor x, Tensor gamma, Tensor beta, float eps, Tensor y) => Time("LayerNorm", () => inner.LayerNorm(x, gamma, beta, eps, y));
    public void Add(Tensor a, Tensor b, Tensor y) => Time("Add", () => inner.Add(a, b, y));
    public void Apply(Activation act, Tensor x, Tensor y) => Time($"Apply {act}", () => inner.Apply(act, x, y));
    public void Attention(Tensor qkv, Tensor y, int heads, float scale, Tensor? probs = null) => Time("Attention", () => inner.Attention(qkv, y, heads, scale, probs));
    public void PatchEmbed(Tensor images, Tensor w, Tensor bias, Tensor y, int patch) => Time("PatchEmbed", () => inner.PatchEmbed(images, w, bias, y, patch));
    public void Embed(Tensor patches, Tensor? cls, Tensor pos, Tensor x) => Time("Embed", () => inner.Embed(patches, cls, pos, x));
    public void MeanTokens(Tensor x, int start, Tensor y) => Time("MeanTokens", () => inner.MeanTokens(x, start, y));
    public void SelectToken(Tensor x, int index, Tensor y) => Time("SelectToken", () => inner.SelectToken(x, index, y));
    public void Transpose12(Tensor x, Tensor y) => Time("Transpose12", () => inner.Transpose12(x, y));
    public void Prepack(Tensor weight) { if (inner is IWeightPrepacking p) p.Prepack(weight); }
    public void Release(Tensor weight) { if (inner is IWeightPrepacking p) p.Release(weight); }
    public void UseInt8(Tensor weight, Int8Matrix quantized) => Int8Inner.UseInt8(weight, quantized);
    public void ReleaseInt8(Tensor weight) => Int8Inner.ReleaseInt8(weight);
    public string Int8Kernel => Int8Inner.Int8Kernel;
    private IInt8Linear Int8Inner => inner as IInt8Linear ?? throw new VitSharpException($"int8 inference needs a backend with int8 products; {inner.GetType().Name} has none");
    public void Dispose() { }
}
