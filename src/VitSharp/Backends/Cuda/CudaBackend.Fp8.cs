using VitSharp.Backends.Cuda.Native;
using VitSharp.Tensors;

namespace VitSharp.Backends.Cuda;

/// <summary>FP8 E4M3 products (<see cref="IFp8Linear"/>): per weight its E4M3 codes and the two per-tensor scales in
/// device memory; each product quantises its input into one reused buffer (Kernels/fp8.cu), then multiplies on
/// cuBLASLt's FP8 path with the bias / GELU-tanh / residual epilogue in bf16.</summary>
public sealed unsafe partial class CudaBackend : IFp8Linear
{
    private sealed class Fp8Weight(DeviceStorage codes, DeviceStorage scales, float inverseInputScale) : IDisposable
    {
        public DeviceStorage Codes { get; } = codes;
        /// <summary>float[2]: the weight's scale, the input's scale.</summary>
        public DeviceStorage Scales { get; } = scales;
        public float InverseInputScale { get; } = inverseInputScale;
        public void Dispose() { Codes.Dispose(); Scales.Dispose(); }
    }

    private readonly Dictionary<nint, Fp8Weight> _fp8 = new();
    private DeviceStorage? _fp8Input, _fp8Output;

    /// <summary>Shapes of FP8 products cuBLASLt refused so far; those products ran in bf16.</summary>
    public int Fp8RefusedShapes => _gemm.Fp8Refused;

    /// <summary>FP8 products that ran in bf16 because cuBLASLt refused their shape (every call, not every shape).</summary>
    public long Fp8Fallbacks => _gemm.Fp8Fallbacks;

    public bool SupportsFp8(out string reason)
    {
        reason = "";
        if (ComputeType != DType.BF16) { reason = "FP8 products run with bf16 compute (--dtype fp8 on CUDA)"; return false; }
        if (Context.ComputeMajor * 10 + Context.ComputeMinor < 89)
        {
            reason = $"{Context.Name} (compute capability {Context.ComputeMajor}.{Context.ComputeMinor}) has no FP8 tensor cores; they need 8.9 (Ada) or later";
            return false;
        }
        return true;
    }

    public bool UseFp8(Tensor weight, byte[] codes, float weightScale, float inputScale)
    {
        if (!SupportsFp8(out var why)) throw new VitSharpException(why);
        CheckCompute(weight);
        int n = weight.Dim(0), k = weight.Dim(1);
        if (codes.Length != (long)n * k) throw new ArgumentException($"UseFp8: {codes.Length} codes for a {n}×{k} weight");
        if (!(weightScale > 0 && float.IsFinite(weightScale) && inputScale > 0 && float.IsFinite(inputScale)))
            throw new ArgumentException($"UseFp8: scales must be positive and finite (weight {weightScale}, input {inputScale})");
        // FP8 operands need 16-byte leading dimensions (k) and cuBLASLt's FP8 kernels tile n by 16.
        if (k % 16 != 0 || n % 16 != 0) return false;
        ReleaseFp8(weight);
        var c = Context.Allocator.Allocate(codes.Length);
        var s = Context.Allocator.Allocate(8);
        float* sc = stackalloc float[2];
        sc[0] = weightScale; sc[1] = inputScale;
        fixed (byte* p = codes) Driver.Check(Driver.cuMemcpyHtoDAsync(c.Pointer, p, (nuint)codes.Length, Context.Stream), "cuMemcpyHtoD");
        Driver.Check(Driver.cuMemcpyHtoDAsync(s.Pointer, sc, 8, Context.Stream), "cuMemcpyHtoD");
        Synchronize(); // the scales came from the stack
        _fp8[weight.Pointer] = new Fp8Weight(c, s, 1f / inputScale);
        return true;
    }

    public void ReleaseFp8(Tensor weight)
    {
        if (_fp8.Remove(weight.Pointer, out var f)) { Synchronize(); f.Dispose(); }
    }

    /// <summary>The FP8 product when <paramref name="w"/> runs FP8 and cuBLASLt takes the shape; false otherwise.</summary>
    private bool TryLinearFp8(Tensor x, Tensor w, Tensor? bias, Tensor y, int m, int n, int k, bool geluTanh, bool accumulate)
    {
        if (_fp8.Count == 0 || !_fp8.TryGetValue(w.Pointer, out var f)) return false;
        long count = (long)m * k, yBytes = (long)m * n * 2;
        // grow-only: the buffers sized by the first (eager) forward are the ones a captured CUDA graph replays
        var q = Grown(ref _fp8Input, count).Pointer;
        nint into = accumulate ? Grown(ref _fp8Output, yBytes).Pointer : 0;
        // the input is quantised only once cuBLASLt has a plan for the shape: a refused shape costs no extra pass
        void Quantize()
        {
            if (count % 8 == 0 && (x.Pointer & 15) == 0)
                LaunchGridStride("fp8.cu", "fp8_quantize_vec8_bf16", count / 8, [x.Pointer, q, Bits(f.InverseInputScale), count / 8]);
            else
                LaunchGridStride("fp8.cu", "fp8_quantize_bf16", count, [x.Pointer, q, Bits(f.InverseInputScale), count]);
        }
        var start = _profile?.Begin();
        bool ran = _gemm.RunFp8(m, n, k, q, f.Codes.Pointer, f.Scales.Pointer, bias?.Pointer ?? 0, y.Pointer, geluTanh, accumulate, into, Quantize);
        if (ran && accumulate)
            Driver.Check(Driver.cuMemcpyDtoDAsync(y.Pointer, into, (nuint)yBytes, Context.Stream), "cuMemcpyDtoD");
        if (start is not null) _profile!.End($"gemm fp8 {m}x{n}x{k}{(bias is null ? "" : "+b")}{(accumulate ? "+=" : "")}", start);
        return ran;
    }

    /// <summary><paramref name="buffer"/>, replaced by a larger one (at least 1 MiB) when it holds fewer than
    /// <paramref name="bytes"/>.</summary>
    private DeviceStorage Grown(ref DeviceStorage? buffer, long bytes)
    {
        if (buffer is null || buffer.Bytes < bytes)
        {
            Synchronize();
            buffer?.Dispose();
            buffer = Context.Allocator.Allocate(Math.Max(bytes, 1 << 20));
        }
        return buffer;
    }

    /// <summary>The quantisation kernel alone: the E4M3 codes of x · <paramref name="inverseScale"/> (the self-test
    /// compares them with <see cref="Fp8.Encode"/> bit for bit).</summary>
    internal byte[] Fp8Codes(Tensor x, float inverseScale)
    {
        CheckCompute(x);
        if (ComputeType != DType.BF16) throw new InvalidOperationException("FP8 quantisation reads bf16");
        using var q = Context.Allocator.Allocate(Math.Max(x.Length, 8));
        if (x.Length % 8 == 0 && (x.Pointer & 15) == 0)
            LaunchGridStride("fp8.cu", "fp8_quantize_vec8_bf16", x.Length / 8, [x.Pointer, q.Pointer, Bits(inverseScale), x.Length / 8]);
        else
            LaunchGridStride("fp8.cu", "fp8_quantize_bf16", x.Length, [x.Pointer, q.Pointer, Bits(inverseScale), x.Length]);
        var codes = new byte[x.Length];
        fixed (byte* p = codes) Driver.Check(Driver.cuMemcpyDtoHAsync(p, q.Pointer, (nuint)codes.Length, Context.Stream), "cuMemcpyDtoH");
        Synchronize();
        return codes;
    }

    /// <summary>What cuBLASLt answers to one FP8 product under each combination of options (diagnosis).</summary>
    internal List<string> ProbeFp8(int m, int n, int k)
    {
        var lines = new List<string>();
        using var x = Context.Allocator.Allocate((long)m * k);
        using var w = Context.Allocator.Allocate((long)n * k);
        using var y = Context.Allocator.Allocate((long)m * n * 4);
        using var b = Context.Allocator.Allocate(n * 4);
        using var s = Context.Allocator.Allocate(8);
        Driver.Check(Driver.cuMemsetD8Async(x.Pointer, 0x38, (nuint)((long)m * k), Context.Stream), "memset");
        Driver.Check(Driver.cuMemsetD8Async(w.Pointer, 0x38, (nuint)((long)n * k), Context.Stream), "memset");
        Driver.Check(Driver.cuMemsetD8Async(b.Pointer, 0, (nuint)(n * 4), Context.Stream), "memset");
        float* one = stackalloc float[2] { 1f, 1f };
        Driver.Check(Driver.cuMemcpyHtoDAsync(s.Pointer, one, 8, Context.Stream), "copy");
        Synchronize();
        using var y2 = Context.Allocator.Allocate((long)m * n * 4);
        foreach (var bias in new[] { false, true })
            foreach (var ct in new[] { 14, 0 })
                foreach (var cMode in new[] { 0, 1, 2 })
                {
                    string r;
                    try { r = _gemm.ProbeFp8(m, n, k, x.Pointer, w.Pointer, s.Pointer, b.Pointer, y.Pointer, bias, true, true, ct, false, cMode, y2.Pointer); Synchronize(); }
                    catch (Exception e) { r = e.Message; }
                    lines.Add($"probe {m}x{n}x{k} bias={bias} C={(ct == 14 ? "bf16" : "f32")} {(cMode == 0 ? "C=D" : cMode == 1 ? "C=null" : "C=other")}: {r}");
                }
        // the two scales in allocations of their own (256-byte aligned) instead of one float[2]
        using var s2 = Context.Allocator.Allocate(256);
        Driver.Check(Driver.cuMemcpyHtoDAsync(s2.Pointer, one, 4, Context.Stream), "copy");
        Synchronize();
        foreach (var cMode in new[] { 0, 1 })
        {
            string r;
            try { r = _gemm.ProbeFp8(m, n, k, x.Pointer, w.Pointer, s.Pointer, b.Pointer, y.Pointer, false, true, true, 14, false, cMode, y2.Pointer, s2.Pointer); Synchronize(); }
            catch (Exception e) { r = e.Message; }
            lines.Add($"probe {m}x{n}x{k} own scale buffers {(cMode == 0 ? "C=D" : "C=null")}: {r}");
        }
        return lines;
    }

    private void DisposeFp8()
    {
        foreach (var f in _fp8.Values) f.Dispose();
        _fp8.Clear();
        _fp8Input?.Dispose();
        _fp8Output?.Dispose();
        _fp8Input = _fp8Output = null;
    }
}
