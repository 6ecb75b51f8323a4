using VitSharp.Backends.Cuda.Native;
using VitSharp.Tensors;

namespace VitSharp.Backends.Cuda;

/// <summary>
/// Row-major y[m, n] = x[m, k] · w[n, k]ᵀ (+ bias, + GELU-tanh, + y) through cuBLASLt. cuBLASLt is column-major, so
/// the same memory is read as yᵀ (n × m) = op(wᶜ)ᵀ · xᶜ with wᶜ the (k × n) column-major view of w: A = w transposed,
/// B = x as is. Plans (descriptors, layouts, the heuristic's algorithm) are cached per shape, dtype, epilogue and
/// pointer alignment; the bias pointer is set per call.
/// </summary>
internal sealed unsafe class CudaGemm : IDisposable
{
    private readonly CudaContext _ctx;
    private readonly nint _handle;
    private readonly DeviceStorage _workspace;
    private const long WorkspaceBytes = 32L << 20;
    private readonly Dictionary<PlanKey, Plan> _plans = new();

    private readonly record struct PlanKey(int M, int N, int K, DType DType, uint Epilogue, bool Accumulate, int AlignA, int AlignB, int AlignC);

    private sealed class Plan
    {
        public nint Desc, LayoutA, LayoutB, LayoutC;
        public CublasLt.HeuristicResult Algo;
    }

    public CudaGemm(CudaContext ctx)
    {
        CublasLt.EnsureLoaded();
        _ctx = ctx;
        nint h;
        CublasLt.Check(CublasLt.cublasLtCreate(&h), "cublasLtCreate");
        _handle = h;
        _workspace = ctx.Allocator.Allocate(WorkspaceBytes);
    }

    private static int Alignment(nint p)
    {
        int a = 256;
        while (a > 1 && (p & (a - 1)) != 0) a >>= 1;
        return a;
    }

    public void Run(int m, int n, int k, DType dtype, nint x, nint w, nint bias, nint y, bool geluTanh, bool accumulate)
    {
        uint epilogue = bias != 0
            ? (geluTanh ? CublasLt.EpilogueGeluBias : CublasLt.EpilogueBias)
            : (geluTanh ? CublasLt.EpilogueGelu : CublasLt.EpilogueDefault);
        var key = new PlanKey(m, n, k, dtype, epilogue, accumulate, Alignment(w), Alignment(x), Alignment(y));
        if (!_plans.TryGetValue(key, out var plan)) _plans[key] = plan = MakePlan(key);
        if (bias != 0)
            CublasLt.Check(CublasLt.cublasLtMatmulDescSetAttribute(plan.Desc, CublasLt.DescBiasPointer, &bias, (nuint)sizeof(nint)), "set bias");
        float alpha = 1f, beta = accumulate ? 1f : 0f;
        var algo = plan.Algo;
        CublasLt.Check(CublasLt.cublasLtMatmul(_handle, plan.Desc, &alpha, w, plan.LayoutA, x, plan.LayoutB, &beta, y, plan.LayoutC,
            y, plan.LayoutC, algo.Algo, _workspace.Pointer, (nuint)WorkspaceBytes, _ctx.Stream), $"cublasLtMatmul {m}x{n}x{k}");
    }

    private Plan MakePlan(PlanKey key)
    {
        int type = key.DType == DType.BF16 ? CublasLt.R16BF : CublasLt.R32F;
        var p = new Plan();
        nint d;
        CublasLt.Check(CublasLt.cublasLtMatmulDescCreate(&d, CublasLt.Compute32F, CublasLt.R32F), "cublasLtMatmulDescCreate");
        p.Desc = d;
        int opT = CublasLt.OpT, opN = CublasLt.OpN;
        uint ep = key.Epilogue;
        CublasLt.Check(CublasLt.cublasLtMatmulDescSetAttribute(d, CublasLt.DescTransA, &opT, 4), "transA");
        CublasLt.Check(CublasLt.cublasLtMatmulDescSetAttribute(d, CublasLt.DescTransB, &opN, 4), "transB");
        CublasLt.Check(CublasLt.cublasLtMatmulDescSetAttribute(d, CublasLt.DescEpilogue, &ep, 4), "epilogue");
        if (ep == CublasLt.EpilogueBias || ep == CublasLt.EpilogueGeluBias)
            CublasLt.Check(CublasLt.cublasLtMatmulDescSetAttribute(d, CublasLt.DescBiasDataType, &type, 4), "bias type");
        nint la, lb, lc;
        CublasLt.Check(CublasLt.cublasLtMatrixLayoutCreate(&la, type, (ulong)key.K, (ulong)key.N, key.K), "layout A");
        CublasLt.Check(CublasLt.cublasLtMatrixLayoutCreate(&lb, type, (ulong)key.K, (ulong)key.M, key.K), "layout B");
        CublasLt.Check(CublasLt.cublasLtMatrixLayoutCreate(&lc, type, (ulong)key.N, (ulong)key.M, key.N), "layout C");
        p.LayoutA = la; p.LayoutB = lb; p.LayoutC = lc;
        nint pref;
        CublasLt.Check(CublasLt.cublasLtMatmulPreferenceCreate(&pref), "preference");
        ulong ws = WorkspaceBytes;
        uint aa = (uint)key.AlignA, ab = (uint)key.AlignB, ac = (uint)key.AlignC;
        CublasLt.Check(CublasLt.cublasLtMatmulPreferenceSetAttribute(pref, CublasLt.PrefMaxWorkspaceBytes, &ws, 8), "workspace");
        CublasLt.Check(CublasLt.cublasLtMatmulPreferenceSetAttribute(pref, CublasLt.PrefMinAlignA, &aa, 4), "align A");
        CublasLt.Check(CublasLt.cublasLtMatmulPreferenceSetAttribute(pref, CublasLt.PrefMinAlignB, &ab, 4), "align B");
        CublasLt.Check(CublasLt.cublasLtMatmulPreferenceSetAttribute(pref, CublasLt.PrefMinAlignC, &ac, 4), "align C");
        CublasLt.Check(CublasLt.cublasLtMatmulPreferenceSetAttribute(pref, CublasLt.PrefMinAlignD, &ac, 4), "align D");
        CublasLt.HeuristicResult r;
        int found;
        CublasLt.Check(CublasLt.cublasLtMatmulAlgoGetHeuristic(_handle, d, la, lb, lc, lc, pref, 1, &r, &found), "cublasLtMatmulAlgoGetHeuristic");
        if (found == 0) throw new CudaException($"cuBLASLt found no algorithm for {key}");
        p.Algo = r;
        return p;
    }

    public void Dispose() => _workspace.Dispose();
}
