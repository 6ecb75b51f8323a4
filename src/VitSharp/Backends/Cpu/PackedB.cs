using System.Runtime.InteropServices;

namespace VitSharp.Backends.Cpu;

/// <summary>
/// op(B) packed once in exactly the layout <see cref="Gemm"/> packs it per call (slices of KC, slivers of NR), so a
/// product with a fixed right-hand side (an inference weight) skips the packing pass and its barrier. Owns native
/// memory; the layout depends on the micro-kernel ISA and KC at packing time (<see cref="IsCurrent"/>).
/// </summary>
internal sealed unsafe class PackedB : IDisposable
{
    public readonly int N, K, Kc;
    public readonly bool TransB;
    public readonly GemmIsa Isa;
    private float* _data;

    private PackedB(GemmIsa isa, int kc, bool transB, int n, int k, float* data)
    {
        Isa = isa; Kc = kc; TransB = transB; N = n; K = k; _data = data;
    }

    public float* Data => _data != null ? _data : throw new ObjectDisposedException(nameof(PackedB));

    /// <summary>True while the GEMM would still pack this B the same way (it can still be used when not: the product
    /// follows the packed layout; this only tells the backend to prefer re-packing for the tuned blocking).</summary>
    public bool IsCurrent => Isa == Gemm.Isa && Kc == Gemm.KC;

    /// <summary>Packed from values the weight's own memory does not hold (<see cref="CpuBackend.Prepack(Tensors.Tensor, ReadOnlySpan{float})"/>):
    /// this copy is the only one, so it is used even when no longer <see cref="IsCurrent"/>.</summary>
    public bool Sole { get; set; }

    /// <summary>Packs op(B) (K×N; B stored N×K when <paramref name="transB"/>), in parallel over slivers.</summary>
    public static PackedB Create(bool transB, int n, int k, float* b, int ldb)
    {
        if (n <= 0 || k <= 0) throw new ArgumentException($"cannot pack an empty {n}×{k} matrix");
        GemmIsa isa = Gemm.Isa;
        int kc = Gemm.KC;
        var plan = new Gemm.Plan(isa, kc, 1, n, k, false, transB, null, 0, b, ldb, null, 0, false, null, Activation.None);
        var data = (float*)NativeMemory.AlignedAlloc((nuint)(plan.PackedFloats * 4), 64);
        plan.BPack = data;
        CpuThreads.For(plan.Slices * plan.NSlivers, plan.PackB);
        return new PackedB(isa, kc, transB, n, k, data);
    }

    public void Dispose()
    {
        if (_data != null) { NativeMemory.AlignedFree(_data); _data = null; }
        GC.SuppressFinalize(this);
    }

    ~PackedB() { if (_data != null) NativeMemory.AlignedFree(_data); }
}
