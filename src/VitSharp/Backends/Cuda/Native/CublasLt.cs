namespace VitSharp.Backends.Cuda.Native;

/// <summary>cuBLASLt entry points and the enum values we use (from cublasLt.h / library_types.h).</summary>
internal static unsafe class CublasLt
{
    private static readonly Lazy<bool> Loaded = new(LoadAll);
    private static Exception? _loadError;

    // cudaDataType_t
    public const int R32F = 0, R16BF = 14, R8F_E4M3 = 28;
    // cublasComputeType_t: plain 32F never uses TF32 (that needs CUBLAS_COMPUTE_32F_FAST_TF32 = 77).
    public const int Compute32F = 68;
    public const int OpN = 0, OpT = 1;
    // cublasLtMatmulDescAttributes_t
    public const int DescComputeType = 0, DescScaleType = 1, DescTransA = 3, DescTransB = 4, DescEpilogue = 7, DescBiasPointer = 8,
        DescBiasDataType = 26, DescAScalePointer = 17, DescBScalePointer = 18, DescFastAccum = 25;
    // cublasLtEpilogue_t. GELU here is the tanh approximation, so exact (erf) GELU runs as a separate kernel.
    public const uint EpilogueDefault = 1, EpilogueBias = 4, EpilogueGelu = 32, EpilogueGeluBias = 36;
    // cublasLtMatrixLayoutAttribute_t: batch count (int32) and the element stride between batches (int64).
    public const int LayoutBatchCount = 5, LayoutStridedBatchOffset = 6;
    // cublasLtMatmulPreferenceAttributes_t
    public const int PrefMaxWorkspaceBytes = 1, PrefMinAlignA = 5, PrefMinAlignB = 6, PrefMinAlignC = 7, PrefMinAlignD = 8;

    /// <summary>cublasLtMatmulHeuristicResult_t: algo (64 bytes), workspaceSize, state, wavesCount, reserved[4].</summary>
    public struct HeuristicResult
    {
        public fixed ulong Algo[8];
        public nuint WorkspaceSize;
        public int State;
        public float WavesCount;
        public fixed int Reserved[4];
    }

    public static delegate* unmanaged<nint*, int> cublasLtCreate;
    public static delegate* unmanaged<nint*, int, int, int> cublasLtMatmulDescCreate;
    public static delegate* unmanaged<nint, int, void*, nuint, int> cublasLtMatmulDescSetAttribute;
    public static delegate* unmanaged<nint*, int, ulong, ulong, long, int> cublasLtMatrixLayoutCreate;
    public static delegate* unmanaged<nint, int, void*, nuint, int> cublasLtMatrixLayoutSetAttribute;
    public static delegate* unmanaged<nint*, int> cublasLtMatmulPreferenceCreate;
    public static delegate* unmanaged<nint, int, void*, nuint, int> cublasLtMatmulPreferenceSetAttribute;
    public static delegate* unmanaged<nint, nint, nint, nint, nint, nint, nint, int, HeuristicResult*, int*, int> cublasLtMatmulAlgoGetHeuristic;
    public static delegate* unmanaged<nint, nint, void*, nint, nint, nint, nint, void*, nint, nint, nint, nint, void*, nint, nuint, nint, int> cublasLtMatmul;

    public static void EnsureLoaded()
    {
        if (!Loaded.Value) throw _loadError as CudaUnavailableException ?? new CudaUnavailableException("cuBLASLt unavailable", _loadError);
    }

    private static bool LoadAll()
    {
        try
        {
            var lib = CudaLibraries.Load("cublasLt", OperatingSystem.IsWindows()
                ? ["cublasLt64_13.dll", "cublasLt64_12.dll"]
                : ["libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so"]);
            nint F(string n) => CudaLibraries.Export(lib, n);
            cublasLtCreate = (delegate* unmanaged<nint*, int>)F("cublasLtCreate");
            cublasLtMatmulDescCreate = (delegate* unmanaged<nint*, int, int, int>)F("cublasLtMatmulDescCreate");
            cublasLtMatmulDescSetAttribute = (delegate* unmanaged<nint, int, void*, nuint, int>)F("cublasLtMatmulDescSetAttribute");
            cublasLtMatrixLayoutCreate = (delegate* unmanaged<nint*, int, ulong, ulong, long, int>)F("cublasLtMatrixLayoutCreate");
            cublasLtMatrixLayoutSetAttribute = (delegate* unmanaged<nint, int, void*, nuint, int>)F("cublasLtMatrixLayoutSetAttribute");
            cublasLtMatmulPreferenceCreate = (delegate* unmanaged<nint*, int>)F("cublasLtMatmulPreferenceCreate");
            cublasLtMatmulPreferenceSetAttribute = (delegate* unmanaged<nint, int, void*, nuint, int>)F("cublasLtMatmulPreferenceSetAttribute");
            cublasLtMatmulAlgoGetHeuristic = (delegate* unmanaged<nint, nint, nint, nint, nint, nint, nint, int, HeuristicResult*, int*, int>)F("cublasLtMatmulAlgoGetHeuristic");
            cublasLtMatmul = (delegate* unmanaged<nint, nint, void*, nint, nint, nint, nint, void*, nint, nint, nint, nint, void*, nint, nuint, nint, int>)F("cublasLtMatmul");
            return true;
        }
        catch (Exception e) { _loadError = e; return false; }
    }

    public static void Check(int status, string what)
    {
        if (status != 0) throw new CudaException($"{what} failed: cublasStatus {status}");
    }
}
