using System.Collections.Concurrent;
using VitSharp.Tensors;

namespace VitSharp.Backends.Cpu;

/// <summary>int8 copies of inference weights (<see cref="Int8Gemm"/>), looked up by the weight's address and shape.</summary>
public sealed unsafe partial class CpuBackend : IInt8Linear
{
    private readonly ConcurrentDictionary<(nint Ptr, int Out, int In), Int8Matrix> _int8 = new();

    public void UseInt8(Tensor weight, Int8Matrix quantized)
    {
        var key = Key(weight);
        if (quantized.N != key.Out || quantized.K != key.In)
            throw new ArgumentException($"int8 weight {quantized.N}×{quantized.K} for {weight}");
        if (_int8.TryRemove(key, out var old) && !ReferenceEquals(old, quantized)) old.Dispose();
        _int8[key] = quantized;
    }

    public void ReleaseInt8(Tensor weight)
    {
        if (_int8.TryRemove(Key(weight), out var q)) q.Dispose();
    }

    public string Int8Kernel => Int8Gemm.Isa switch { Int8Isa.Avx512Vnni => "avx512-vnni", Int8Isa.AvxVnni => "avx-vnni", _ => "scalar" };

    private Int8Matrix? Int8For(Tensor w, int n, int k) =>
        _int8.IsEmpty || !_int8.TryGetValue((w.Pointer, n, k), out var q) ? null : q;
}
