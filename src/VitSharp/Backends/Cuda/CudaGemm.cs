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
    private readonly Dictionary<PlanKey, Plan?> _plans = new();

    private readonly record struct PlanKey(int M, int N, int K, DType DType, uint Epilogue, bool Accumulate, int AlignA, int AlignB, int AlignC);

    private sealed class Plan
    {
        public nint Desc, LayoutA, LayoutB, LayoutC;
        public CublasLt.HeuristicResult Algo;
        /// <summary>FP8 only: the heuristic's further algorithms, tried in order when cuBLASLt refuses one at run time.</summary>
        public Queue<CublasLt.HeuristicResult>? Alternatives;
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
        if (!_plans.TryGetValue(key, out var plan) || plan is null) _plans[key] = plan = MakePlan(key)!;
        if (bias != 0)
            CublasLt.Check(CublasLt.cublasLtMatmulDescSetAttribute(plan.Desc, CublasLt.DescBiasPointer, &bias, (nuint)sizeof(nint)), "set bias");
        float alpha = 1f, beta = accumulate ? 1f : 0f;
        var algo = plan.Algo;
        CublasLt.Check(CublasLt.cublasLtMatmul(_handle, plan.Desc, &alpha, w, plan.LayoutA, x, plan.LayoutB, &beta, y, plan.LayoutC,
            y, plan.LayoutC, algo.Algo, _workspace.Pointer, (nuint)WorkspaceBytes, _ctx.Stream), $"cublasLtMatmul {m}x{n}x{k}");
    }

    /// <summary>
    /// The FP8 product (IFp8Linear): y (bf16) = (sᵥᵥ·w8)·(sₓ·x8)ᵀ (+ bias, + GELU-tanh, + y) with w8 (n × k) and x8 (m × k) in
    /// E4M3, <paramref name="scales"/> a device float[2] = { sᵥᵥ, sₓ }, fp32 accumulation (cuBLASLt's fast-accumulation
    /// mode, as Transformer Engine runs forward products). Hopper's FP8 products take exactly this "TN" form. False when
    /// cuBLASLt has no FP8 algorithm for the shape, alignment or epilogue (the caller then multiplies in bf16).
    /// <paramref name="writeInput"/> fills x8 (the quantisation pass), called only once a plan exists.
    /// </summary>
    public bool RunFp8(int m, int n, int k, nint x8, nint w8, nint scales, nint bias, nint y, bool geluTanh, bool accumulate, nint accumulateInto,
        Action writeInput)
    {
        if (accumulate && accumulateInto == 0) throw new ArgumentException("RunFp8: a residual add needs an output buffer apart from y");
        uint epilogue = bias != 0
            ? (geluTanh ? CublasLt.EpilogueGeluBias : CublasLt.EpilogueBias)
            : (geluTanh ? CublasLt.EpilogueGelu : CublasLt.EpilogueDefault);
        var key = new PlanKey(m, n, k, DType.F8E4M3, epilogue, accumulate, Alignment(w8), Alignment(x8), Alignment(y));
        if (!_plans.TryGetValue(key, out var plan) && (_plans[key] = plan = MakePlan(key, scales)) is null) Fp8Refused++;
        if (plan is null) { Fp8Fallbacks++; return false; }
        writeInput();
        if (bias != 0)
            CublasLt.Check(CublasLt.cublasLtMatmulDescSetAttribute(plan.Desc, CublasLt.DescBiasPointer, &bias, (nuint)sizeof(nint)), "set bias");
        SetScales(plan.Desc, scales);
        float alpha = 1f, beta = accumulate ? 1f : 0f;
        var algo = plan.Algo;
        // cuBLASLt's FP8 kernels write D out of place (C ≠ D): with beta = 0 there is no C; a residual add (beta = 1)
        // reads C = y and writes D = accumulateInto, which the caller copies back.
        int status = CublasLt.cublasLtMatmul(_handle, plan.Desc, &alpha, w8, plan.LayoutA, x8, plan.LayoutB, &beta, accumulate ? y : 0, plan.LayoutC,
            accumulate ? accumulateInto : y, plan.LayoutC, algo.Algo, _workspace.Pointer, (nuint)WorkspaceBytes, _ctx.Stream);
        // An algorithm the heuristic offered may still be refused when run (seen on the H200 for its first choice):
        // the next ones are tried, and the one that runs is kept for the shape.
        while (status == NotSupported && plan.Alternatives is { Count: > 0 } rest)
        {
            plan.Algo = algo = rest.Dequeue();
            status = CublasLt.cublasLtMatmul(_handle, plan.Desc, &alpha, w8, plan.LayoutA, x8, plan.LayoutB, &beta, accumulate ? y : 0, plan.LayoutC,
                accumulate ? accumulateInto : y, plan.LayoutC, algo.Algo, _workspace.Pointer, (nuint)WorkspaceBytes, _ctx.Stream);
        }
        if (status == NotSupported) { _plans[key] = null; Fp8Refused++; Fp8Fallbacks++; return false; } // this shape stays on bf16 from now on
        plan.Alternatives = null;
        CublasLt.Check(status, $"cublasLtMatmul fp8 {m}x{n}x{k}");
        return true;
    }

    /// <summary>FP8 product shapes cuBLASLt refused (no algorithm, or the chosen one not supported at run time): they run bf16.</summary>
    public int Fp8Refused { get; private set; }

    /// <summary>FP8 products that ran in bf16 instead (every call of a refused shape).</summary>
    public long Fp8Fallbacks { get; private set; }

    /// <summary>The two per-tensor scales, set before the heuristic too: an algorithm chosen without them may not take them.</summary>
    private static void SetScales(nint desc, nint scales, nint scaleB = 0)
    {
        nint sw = scales, sx = scaleB != 0 ? scaleB : scales + 4;
        CublasLt.Check(CublasLt.cublasLtMatmulDescSetAttribute(desc, CublasLt.DescAScalePointer, &sw, (nuint)sizeof(nint)), "set A scale");
        CublasLt.Check(CublasLt.cublasLtMatmulDescSetAttribute(desc, CublasLt.DescBScalePointer, &sx, (nuint)sizeof(nint)), "set B scale");
    }

    /// <summary>A plan for <see cref="Run"/> (bf16 or f32 throughout) or <see cref="RunFp8"/> (E4M3 operands, bf16 C and
    /// bias); null for an FP8 plan cuBLASLt has no algorithm for.</summary>
    private Plan? MakePlan(PlanKey key, nint fp8Scales = 0)
    {
        bool fp8 = key.DType == DType.F8E4M3;
        int type = key.DType == DType.BF16 || fp8 ? CublasLt.R16BF : CublasLt.R32F;
        int abType = fp8 ? CublasLt.R8F_E4M3 : type;
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
        if (fp8)
        {
            sbyte fast = 1;
            CublasLt.Check(CublasLt.cublasLtMatmulDescSetAttribute(d, CublasLt.DescFastAccum, &fast, 1), "fast accumulation");
            SetScales(d, fp8Scales);
        }
        nint la, lb, lc;
        CublasLt.Check(CublasLt.cublasLtMatrixLayoutCreate(&la, abType, (ulong)key.K, (ulong)key.N, key.K), "layout A");
        CublasLt.Check(CublasLt.cublasLtMatrixLayoutCreate(&lb, abType, (ulong)key.K, (ulong)key.M, key.K), "layout B");
        CublasLt.Check(CublasLt.cublasLtMatrixLayoutCreate(&lc, type, (ulong)key.N, (ulong)key.M, key.N), "layout C");
        p.LayoutA = la; p.LayoutB = lb; p.LayoutC = lc;
        var found = Heuristics(d, la, lb, lc, key.AlignA, key.AlignB, key.AlignC, fp8 ? 8 : 1);
        if (found.Length == 0)
        {
            if (fp8) return null;
            throw new CudaException($"cuBLASLt found no algorithm for {key}");
        }
        p.Algo = found[0];
        if (fp8) p.Alternatives = new Queue<CublasLt.HeuristicResult>(found.Skip(1));
        return p;
    }

    /// <summary>cuBLASLt's first algorithm for a plan, within our workspace and the operands' alignments (A, B, C = D).</summary>
    private CublasLt.HeuristicResult Heuristic(nint d, nint la, nint lb, nint lc, int alignA, int alignB, int alignC, string what) =>
        TryHeuristic(d, la, lb, lc, alignA, alignB, alignC, out var r) ? r : throw new CudaException($"cuBLASLt found no algorithm for {what}");

    private bool TryHeuristic(nint d, nint la, nint lb, nint lc, int alignA, int alignB, int alignC, out CublasLt.HeuristicResult result)
    {
        var found = Heuristics(d, la, lb, lc, alignA, alignB, alignC, 1);
        result = found.Length > 0 ? found[0] : default;
        return found.Length > 0;
    }

    /// <summary>Up to <paramref name="count"/> of cuBLASLt's algorithms for a plan, best first, within our workspace
    /// and the operands' alignments (A, B, C = D); only those whose state is success. None when it has none.</summary>
    private CublasLt.HeuristicResult[] Heuristics(nint d, nint la, nint lb, nint lc, int alignA, int alignB, int alignC, int count)
    {
        nint pref;
        CublasLt.Check(CublasLt.cublasLtMatmulPreferenceCreate(&pref), "preference");
        ulong ws = WorkspaceBytes;
        uint aa = (uint)alignA, ab = (uint)alignB, ac = (uint)alignC;
        CublasLt.Check(CublasLt.cublasLtMatmulPreferenceSetAttribute(pref, CublasLt.PrefMaxWorkspaceBytes, &ws, 8), "workspace");
        CublasLt.Check(CublasLt.cublasLtMatmulPreferenceSetAttribute(pref, CublasLt.PrefMinAlignA, &aa, 4), "align A");
        CublasLt.Check(CublasLt.cublasLtMatmulPreferenceSetAttribute(pref, CublasLt.PrefMinAlignB, &ab, 4), "align B");
        CublasLt.Check(CublasLt.cublasLtMatmulPreferenceSetAttribute(pref, CublasLt.PrefMinAlignC, &ac, 4), "align C");
        CublasLt.Check(CublasLt.cublasLtMatmulPreferenceSetAttribute(pref, CublasLt.PrefMinAlignD, &ac, 4), "align D");
        var results = new CublasLt.HeuristicResult[count];
        int found = 0, status;
        fixed (CublasLt.HeuristicResult* r = results)
            status = CublasLt.cublasLtMatmulAlgoGetHeuristic(_handle, d, la, lb, lc, lc, pref, count, r, &found);
        if (status == NotSupported) return [];
        CublasLt.Check(status, "cublasLtMatmulAlgoGetHeuristic");
        return results.Take(found).Where(r => r.State == 0).ToArray();
    }

    private const int NotSupported = 15; // CUBLAS_STATUS_NOT_SUPPORTED

    private readonly record struct GeneralKey(bool TransA, bool TransB, int M, int N, int K, int Lda, int Ldb, int Ldc,
        long StrideA, long StrideB, long StrideC, int Batch, DType AB, DType C, int AlignA, int AlignB, int AlignC);
    private readonly Dictionary<GeneralKey, Plan> _general = new();

    /// <summary>
    /// Row-major, optionally strided-batched: C[m, n] = alpha·op(A)·op(B) + beta·C for each of <paramref name="batch"/>
    /// matrices, op(X) = Xᵀ when its flag is set; lda/ldb/ldc are row strides of the matrices as stored. A and B are in
    /// <paramref name="ab"/>, C in <paramref name="c"/> (bf16 operands may accumulate into an fp32 C: parameter gradients).
    /// Column-major cuBLASLt computes Cᵀ = op(B)ᵀ·op(A)ᵀ on the same memory.
    /// </summary>
    public void RunGeneral(bool transA, bool transB, int m, int n, int k, DType ab, nint a, int lda, long strideA, nint b, int ldb, long strideB,
        DType c, nint cp, int ldc, long strideC, int batch, float alpha, float beta)
    {
        var key = new GeneralKey(transA, transB, m, n, k, lda, ldb, ldc, strideA, strideB, strideC, batch, ab, c,
            Alignment(a), Alignment(b), Alignment(cp));
        if (!_general.TryGetValue(key, out var plan)) _general[key] = plan = MakeGeneralPlan(key);
        var algo = plan.Algo;
        // cuBLASLt's A is our B and its B is our A (see above).
        CublasLt.Check(CublasLt.cublasLtMatmul(_handle, plan.Desc, &alpha, b, plan.LayoutA, a, plan.LayoutB, &beta, cp, plan.LayoutC,
            cp, plan.LayoutC, algo.Algo, _workspace.Pointer, (nuint)WorkspaceBytes, _ctx.Stream), $"cublasLtMatmul {key}");
    }

    private Plan MakeGeneralPlan(GeneralKey key)
    {
        int abType = key.AB == DType.BF16 ? CublasLt.R16BF : CublasLt.R32F, cType = key.C == DType.BF16 ? CublasLt.R16BF : CublasLt.R32F;
        var p = new Plan();
        nint d;
        CublasLt.Check(CublasLt.cublasLtMatmulDescCreate(&d, CublasLt.Compute32F, CublasLt.R32F), "cublasLtMatmulDescCreate");
        p.Desc = d;
        // Column-major: A' = our B (n × k as op(B)ᵀ), B' = our A (k × m as op(A)ᵀ), C' = n × m.
        int opA = key.TransB ? CublasLt.OpT : CublasLt.OpN, opB = key.TransA ? CublasLt.OpT : CublasLt.OpN;
        uint ep = CublasLt.EpilogueDefault;
        CublasLt.Check(CublasLt.cublasLtMatmulDescSetAttribute(d, CublasLt.DescTransA, &opA, 4), "transA");
        CublasLt.Check(CublasLt.cublasLtMatmulDescSetAttribute(d, CublasLt.DescTransB, &opB, 4), "transB");
        CublasLt.Check(CublasLt.cublasLtMatmulDescSetAttribute(d, CublasLt.DescEpilogue, &ep, 4), "epilogue");
        nint la, lb, lc;
        // Stored shapes, column-major: B stored row-major (k × n) or, transposed, (n × k); read column-major that is
        // (n × k) resp. (k × n) with leading dimension ldb.
        ulong aRows = key.TransB ? (ulong)key.K : (ulong)key.N, aCols = key.TransB ? (ulong)key.N : (ulong)key.K;
        ulong bRows = key.TransA ? (ulong)key.M : (ulong)key.K, bCols = key.TransA ? (ulong)key.K : (ulong)key.M;
        CublasLt.Check(CublasLt.cublasLtMatrixLayoutCreate(&la, abType, aRows, aCols, key.Ldb), "layout A");
        CublasLt.Check(CublasLt.cublasLtMatrixLayoutCreate(&lb, abType, bRows, bCols, key.Lda), "layout B");
        CublasLt.Check(CublasLt.cublasLtMatrixLayoutCreate(&lc, cType, (ulong)key.N, (ulong)key.M, key.Ldc), "layout C");
        if (key.Batch > 1)
        {
            int count = key.Batch;
            long sa = key.StrideB, sb = key.StrideA, sc = key.StrideC;
            CublasLt.Check(CublasLt.cublasLtMatrixLayoutSetAttribute(la, CublasLt.LayoutBatchCount, &count, 4), "batch A");
            CublasLt.Check(CublasLt.cublasLtMatrixLayoutSetAttribute(lb, CublasLt.LayoutBatchCount, &count, 4), "batch B");
            CublasLt.Check(CublasLt.cublasLtMatrixLayoutSetAttribute(lc, CublasLt.LayoutBatchCount, &count, 4), "batch C");
            CublasLt.Check(CublasLt.cublasLtMatrixLayoutSetAttribute(la, CublasLt.LayoutStridedBatchOffset, &sa, 8), "stride A");
            CublasLt.Check(CublasLt.cublasLtMatrixLayoutSetAttribute(lb, CublasLt.LayoutStridedBatchOffset, &sb, 8), "stride B");
            CublasLt.Check(CublasLt.cublasLtMatrixLayoutSetAttribute(lc, CublasLt.LayoutStridedBatchOffset, &sc, 8), "stride C");
        }
        p.LayoutA = la; p.LayoutB = lb; p.LayoutC = lc;
        // cuBLASLt's A is our B: its alignment requirement is our B's.
        p.Algo = Heuristic(d, la, lb, lc, key.AlignB, key.AlignA, key.AlignC, key.ToString());
        return p;
    }

    /// <summary>Diagnosis of the FP8 path (`vit cuda-selftest --fp8-only`): builds one FP8 product m×n×k with the given
    /// options from scratch and says what cuBLASLt answered at each step.</summary>
    internal string ProbeFp8(int m, int n, int k, nint x8, nint w8, nint scales, nint bias, nint y, bool withBias, bool fast, bool scalesFirst,
        int cType, bool setAlign, int cMode, nint other, nint scaleB = 0)
    {
        nint d;
        CublasLt.Check(CublasLt.cublasLtMatmulDescCreate(&d, CublasLt.Compute32F, CublasLt.R32F), "desc");
        int opT = CublasLt.OpT, opN = CublasLt.OpN;
        uint ep = withBias ? CublasLt.EpilogueBias : CublasLt.EpilogueDefault;
        int bt = CublasLt.R16BF;
        CublasLt.cublasLtMatmulDescSetAttribute(d, CublasLt.DescTransA, &opT, 4);
        CublasLt.cublasLtMatmulDescSetAttribute(d, CublasLt.DescTransB, &opN, 4);
        CublasLt.cublasLtMatmulDescSetAttribute(d, CublasLt.DescEpilogue, &ep, 4);
        if (withBias) { CublasLt.cublasLtMatmulDescSetAttribute(d, CublasLt.DescBiasDataType, &bt, 4); CublasLt.cublasLtMatmulDescSetAttribute(d, CublasLt.DescBiasPointer, &bias, 8); }
        if (fast) { sbyte f = 1; CublasLt.cublasLtMatmulDescSetAttribute(d, CublasLt.DescFastAccum, &f, 1); }
        if (scalesFirst) SetScales(d, scales, scaleB);
        nint la, lb, lc;
        int e4 = CublasLt.R8F_E4M3;
        CublasLt.cublasLtMatrixLayoutCreate(&la, e4, (ulong)k, (ulong)n, k);
        CublasLt.cublasLtMatrixLayoutCreate(&lb, e4, (ulong)k, (ulong)m, k);
        CublasLt.cublasLtMatrixLayoutCreate(&lc, cType, (ulong)n, (ulong)m, n);
        nint pref;
        CublasLt.cublasLtMatmulPreferenceCreate(&pref);
        ulong ws = WorkspaceBytes;
        CublasLt.cublasLtMatmulPreferenceSetAttribute(pref, CublasLt.PrefMaxWorkspaceBytes, &ws, 8);
        if (setAlign)
        {
            uint a = 256;
            foreach (var attr in new[] { CublasLt.PrefMinAlignA, CublasLt.PrefMinAlignB, CublasLt.PrefMinAlignC, CublasLt.PrefMinAlignD })
                CublasLt.cublasLtMatmulPreferenceSetAttribute(pref, attr, &a, 4);
        }
        const int Asked = 8;
        var rs = stackalloc CublasLt.HeuristicResult[Asked];
        int found = 0;
        int hs = CublasLt.cublasLtMatmulAlgoGetHeuristic(_handle, d, la, lb, lc, lc, pref, Asked, rs, &found);
        string res = $"heuristic {hs} found {found}";
        if (hs == 0 && found > 0)
        {
            if (!scalesFirst) SetScales(d, scales, scaleB);
            float alpha = 1, beta = 0;
            nint c = cMode == 0 ? y : cMode == 1 ? 0 : other;
            // every algorithm offered, in order: state, workspace, and what cublasLtMatmul answers
            for (int i = 0; i < found; i++)
            {
                int ms = CublasLt.cublasLtMatmul(_handle, d, &alpha, w8, la, x8, lb, &beta, c, lc, y, lc, rs[i].Algo, _workspace.Pointer, (nuint)WorkspaceBytes, _ctx.Stream);
                res += $"; #{i} state {rs[i].State} ws {rs[i].WorkspaceSize} matmul {ms}";
            }
        }
        return res;
    }

    public void Dispose() => _workspace.Dispose();
}
