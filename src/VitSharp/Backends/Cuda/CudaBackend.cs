using VitSharp.Backends.Cuda.Native;
using VitSharp.Tensors;

namespace VitSharp.Backends.Cuda;

/// <summary>
/// NVIDIA GPU backend. Activations and weights live in device memory in <see cref="ComputeType"/> (BF16 or F32,
/// chosen at construction); arithmetic accumulates in fp32 (matrix products through cuBLASLt with TF32 off, the rest
/// in our NVRTC-compiled kernels). Every op is queued on one stream and returns at once: only
/// <see cref="CopyToHost"/> and <see cref="Synchronize"/> wait. Kernels live in Kernels/*.cu, one file per layer.
/// </summary>
public sealed unsafe partial class CudaBackend : IBackend, IGraphCapture
{
    private readonly CudaGemm _gemm;
    private readonly string _suffix;

    public CudaBackend(DType computeType = DType.BF16, int device = 0)
    {
        if (computeType is not (DType.BF16 or DType.F32))
            throw new ArgumentException($"CUDA compute type must be BF16 or F32, not {computeType}");
        Context = CudaContext.Get(device);
        Native.Nvrtc.EnsureLoaded(); // fail here, with the reason, rather than at the first kernel
        ComputeType = computeType;
        _suffix = computeType == DType.BF16 ? "bf16" : "f32";
        _gemm = new CudaGemm(Context);
    }

    /// <summary>The CLI's entry point (found by name): bf16 compute on the given GPU.</summary>
    public static CudaBackend Create(Device device) => new(DType.BF16, device.Index);

    /// <summary>The CLI's entry point with a compute type (`--dtype bf16|f32`), found by name like <see cref="Create(Device)"/>.</summary>
    public static CudaBackend Create(Device device, DType computeType) => new(computeType, device.Index);

    public CudaContext Context { get; }

    /// <summary>Warps per flash-attention block (4 or 8); VITSHARP_ATTN_WARPS sets the default, for kernel experiments.</summary>
    internal int AttentionWarps { get; set; } = Environment.GetEnvironmentVariable("VITSHARP_ATTN_WARPS") == "4" ? 4 : 8;
    public Device Device => Device.Cuda(Context.Ordinal);
    public DType ComputeType { get; }

    /// <summary>True when the CUDA driver loads and a GPU is present; otherwise <paramref name="reason"/> says why.</summary>
    public static bool IsAvailable(out string reason) => CudaContext.IsAvailable(out reason);

    public Tensor Allocate(int[] shape, DType dtype)
    {
        long bytes = Shape.Count(shape) * dtype.SizeOf();
        return new Tensor(shape, dtype, Context.Allocator.Allocate(bytes));
    }

    private ushort[] _stage = [];

    /// <summary>Rounds to bf16 into <paramref name="dst"/>; over the cores in chunks of 256 K values for large copies
    /// (a training batch: 1.5 M values for CIFAR at 512, 77 M at 224² and 512).</summary>
    private static void ToBf16(ReadOnlySpan<float> src, ushort[] dst)
    {
        const int Chunk = 1 << 18;
        int count = src.Length;
        if (count < 2 * Chunk) { BFloat16Convert.FromFloat(src, dst.AsSpan(0, count)); return; }
        fixed (float* p = src)
        {
            nint at0 = (nint)p;
            Parallel.For(0, (count + Chunk - 1) / Chunk, c =>
            {
                int at = c * Chunk, n = Math.Min(Chunk, count - at);
                BFloat16Convert.FromFloat(new ReadOnlySpan<float>((float*)at0 + at, n), dst.AsSpan(at, n));
            });
        }
    }

    public void CopyFromHost(ReadOnlySpan<float> src, Tensor dst)
    {
        CheckDevice(dst);
        if (src.Length != dst.Length) throw new ArgumentException($"copy of {src.Length} values into {dst}");
        switch (dst.DType)
        {
            case DType.F32:
                fixed (float* s = src)
                    Driver.Check(Driver.cuMemcpyHtoDAsync(dst.Pointer, s, (nuint)(src.Length * 4), Context.Stream), "cuMemcpyHtoD");
                break;
            case DType.BF16:
                // One staging array, reused: a copy from pageable memory has consumed it when the call returns.
                if (_stage.Length < src.Length) _stage = new ushort[src.Length];
                ToBf16(src, _stage);
                fixed (ushort* s = _stage)
                    Driver.Check(Driver.cuMemcpyHtoDAsync(dst.Pointer, s, (nuint)(src.Length * 2), Context.Stream), "cuMemcpyHtoD");
                break;
            default: throw new NotSupportedException($"host copy into {dst.DType}");
        }
    }

    public void CopyToHost(Tensor src, Span<float> dst)
    {
        CheckDevice(src);
        if (dst.Length != src.Length) throw new ArgumentException($"copy of {src} into {dst.Length} values");
        switch (src.DType)
        {
            case DType.F32:
                fixed (float* d = dst)
                    Driver.Check(Driver.cuMemcpyDtoHAsync(d, src.Pointer, (nuint)(dst.Length * 4), Context.Stream), "cuMemcpyDtoH");
                Synchronize();
                break;
            case DType.BF16:
                var tmp = new ushort[dst.Length];
                fixed (ushort* d = tmp)
                    Driver.Check(Driver.cuMemcpyDtoHAsync(d, src.Pointer, (nuint)(dst.Length * 2), Context.Stream), "cuMemcpyDtoH");
                Synchronize();
                BFloat16Convert.ToFloat(tmp, dst);
                break;
            default: throw new NotSupportedException($"host copy from {src.DType}");
        }
    }

    public void Synchronize() => Context.Synchronize();

    public void Linear(Tensor x, Tensor w, Tensor? bias, Tensor y, Activation act = Activation.None, bool accumulate = false)
    {
        var (m, n, k) = LinearShape.Check(x, w, y);
        if (accumulate && act != Activation.None) throw new ArgumentException("Linear: accumulate needs act = None");
        CheckCompute(x, w, y);
        if (bias is not null) CheckCompute(bias);
        // cuBLASLt rejects some operands that are not 16-byte aligned (seen: a bias view at an odd bf16 offset in a
        // Mixer's parameter buffer, CUBLAS_STATUS_NOT_SUPPORTED): such operands go through aligned copies.
        if (!Aligned16(x, w, y) || (bias is not null && (bias.Pointer & 15) != 0))
        {
            using var xa = AlignedCopy(x, copy: true);
            using var wa = AlignedCopy(w, copy: true);
            using var ba = bias is null ? null : AlignedCopy(bias, copy: true);
            using var ya = AlignedCopy(y, copy: accumulate);
            Linear(xa ?? x, wa ?? w, ba ?? bias, ya ?? y, act, accumulate);
            if (ya is not null) CopyDevice(ya, y);
            return;
        }
        // cuBLASLt's GELU epilogue is the tanh form; exact GELU and tanh run as one pass over y afterwards.
        bool fused = act is Activation.None or Activation.GeluTanh;
        if (TryLinearFp8(x, w, bias, y, m, n, k, act == Activation.GeluTanh, accumulate))
        {
            if (!fused) Apply(act, y, y);
            return;
        }
        var start = _profile?.Begin();
        _gemm.Run(m, n, k, ComputeType, x.Pointer, w.Pointer, bias?.Pointer ?? 0, y.Pointer, act == Activation.GeluTanh, accumulate);
        if (start is not null) _profile!.End($"gemm fwd {m}x{n}x{k}{(bias is null ? "" : "+b")}{(accumulate ? "+=" : "")}", start);
        if (!fused) Apply(act, y, y);
    }

    /// <summary>A 16-byte-aligned device copy of <paramref name="t"/> (contents copied when asked), or null when it is aligned.</summary>
    private Tensor? AlignedCopy(Tensor t, bool copy)
    {
        if ((t.Pointer & 15) == 0) return null;
        var a = Allocate(t.Shape, t.DType);
        if (copy) CopyDevice(t, a);
        return a;
    }

    private void CopyDevice(Tensor src, Tensor dst) =>
        Driver.Check(Driver.cuMemcpyDtoDAsync(dst.Pointer, src.Pointer, (nuint)(src.Length * src.DType.SizeOf()), Context.Stream), "cuMemcpyDtoD");

    public void LayerNorm(Tensor x, Tensor gamma, Tensor beta, float eps, Tensor y)
    {
        CheckCompute(x, gamma, beta, y);
        int d = x.Dim(-1);
        int rows = checked((int)(x.Length / d));
        int chunks = (d / 8 + 31) / 32; // 8-element pieces per lane
        if (d % 8 == 0 && chunks <= 6 && Aligned16(x, gamma, beta, y))
            Launch("layernorm.cu", $"layernorm_warp_c{(chunks == 5 ? 6 : chunks)}_{_suffix}", (uint)((rows + 3) / 4), 1, 1, 128, 1, 1, 0,
                x.Pointer, gamma.Pointer, beta.Pointer, y.Pointer, rows, d, Bits(eps));
        else
            Launch("layernorm.cu", "layernorm_block_" + _suffix, (uint)rows, 1, 1, 256, 1, 1, 0,
                x.Pointer, gamma.Pointer, beta.Pointer, y.Pointer, d, Bits(eps));
    }

    public void Add(Tensor a, Tensor b, Tensor y)
    {
        if (a.Length != b.Length || a.Length != y.Length) throw new ArgumentException($"Add: {a} + {b} -> {y}");
        CheckCompute(a, b, y);
        if (a.Length % 8 == 0 && Aligned16(a, b, y))
            LaunchElementwise("add_vec8_" + _suffix, a.Length / 8, a.Pointer, b.Pointer, y.Pointer, a.Length / 8);
        else
            LaunchElementwise("add_" + _suffix, a.Length, a.Pointer, b.Pointer, y.Pointer, a.Length);
    }

    public void Apply(Activation act, Tensor x, Tensor y)
    {
        if (x.Length != y.Length) throw new ArgumentException($"Apply: {x} -> {y}");
        CheckCompute(x, y);
        if (act == Activation.None && x.Pointer == y.Pointer) return;
        if (x.Length % 8 == 0 && Aligned16(x, y))
            LaunchElementwise("activation_vec8_" + _suffix, x.Length / 8, x.Pointer, y.Pointer, x.Length / 8, (int)act);
        else
            LaunchElementwise("activation_" + _suffix, x.Length, x.Pointer, y.Pointer, x.Length, (int)act);
    }

    public void Attention(Tensor qkv, Tensor y, int heads, float scale, Tensor? probs = null)
    {
        int batch = qkv.Dim(0), n = qkv.Dim(1), width = qkv.Dim(2) / 3, hd = width / heads;
        if (qkv.Dim(2) != 3 * heads * hd) throw new ArgumentException($"Attention: {qkv} is not 3·{heads} heads wide");
        if (y.Length != (long)batch * n * width) throw new ArgumentException($"Attention: output {y} for {qkv}");
        CheckCompute(qkv, y);
        if (probs is not null && probs.DType == ComputeType)
        {
            // Training (and attention maps in the compute type): probabilities materialised, products on tensor cores.
            CheckDevice(probs);
            if (probs.Length != (long)batch * heads * n * n) throw new ArgumentException($"Attention: probs {probs} for {qkv}");
            AttentionMaterialised(qkv, y, heads, scale, probs);
            return;
        }
        if (probs is null && ComputeType == DType.BF16 && hd is 32 or 64 or 80 or 128 && Aligned16(qkv, y))
        {
            const float log2e = 1.4426950408889634f;
            int warps = AttentionWarps;
            Launch("attention.cu", $"flash_attn_bf16_hd{hd}_w{warps}", (uint)((n + warps * 16 - 1) / (warps * 16)), (uint)heads, (uint)batch,
                (uint)(warps * 32), 1, 1, 0,
                qkv.Pointer, y.Pointer, n, heads, Bits(scale * log2e));
            return;
        }
        if (probs is null && hd <= 128)
        {
            int tiledSmem = (32 * hd + 32 * (hd + 1) + 32 * hd) * 4;
            var f = Context.Kernels.Function("attention.cu", "attention_tiled_" + _suffix);
            if (tiledSmem > 48 * 1024) EnsureDynamicShared(f, tiledSmem);
            Launch("attention.cu", "attention_tiled_" + _suffix, (uint)((n + 31) / 32), (uint)heads, (uint)batch, 128, 1, 1, tiledSmem,
                qkv.Pointer, y.Pointer, n, heads, hd, Bits(scale));
            return;
        }
        Tensor? p32 = null;
        if (probs is not null)
        {
            CheckDevice(probs);
            if (probs.Length != (long)batch * heads * n * n) throw new ArgumentException($"Attention: probs {probs} for {qkv}");
            p32 = probs.DType == DType.F32 ? probs : Allocate(probs.Shape, DType.F32);
        }
        int smem = (n + hd) * 4;
        if (smem > 48 * 1024) throw new NotSupportedException($"Attention: {n} tokens need {smem} bytes of shared memory");
        Launch("attention.cu", "attention_generic_" + _suffix, (uint)n, (uint)heads, (uint)batch, 128, 1, 1, smem,
            qkv.Pointer, y.Pointer, p32?.Pointer ?? 0, n, heads, hd, Bits(scale));
        if (probs is not null && p32 != probs)
        {
            LaunchElementwise("convert_f32_to_bf16", probs.Length, p32!.Pointer, probs.Pointer, probs.Length);
            p32.Dispose();
        }
    }

    public void PatchEmbed(Tensor images, Tensor w, Tensor bias, Tensor y, int patch)
    {
        CheckCompute(images, w, bias, y);
        int batch = images.Dim(0), c = images.Dim(1), h = images.Dim(2), wd = images.Dim(3);
        int np = (h / patch) * (wd / patch), kdim = c * patch * patch;
        using var cols = Allocate([batch * np, kdim], ComputeType);
        int es = ComputeType.SizeOf();
        bool vec = patch * es % 16 == 0 && wd * es % 16 == 0 && Aligned16(images, cols);
        long perImage = (long)np * c * patch;
        Launch("elementwise.cu", "im2col_" + _suffix, PerImageBlocks(perImage, batch), (uint)batch, 1, 256, 1, 1, 0,
            images.Pointer, cols.Pointer, c, h, wd, patch, vec ? 1 : 0);
        Linear(cols, w.View(w.Dim(0), kdim), bias, y.View(batch * np, w.Dim(0)));
    }

    public void Embed(Tensor patches, Tensor? cls, Tensor pos, Tensor x)
    {
        CheckCompute(patches, pos, x);
        if (cls is not null) CheckCompute(cls);
        int batch = patches.Dim(0), np = patches.Dim(1), d = patches.Dim(2);
        Launch("elementwise.cu", "embed_" + _suffix, PerImageBlocks(x.Length / batch, batch), (uint)batch, 1, 256, 1, 1, 0,
            patches.Pointer, cls?.Pointer ?? 0, pos.Pointer, x.Pointer, np, d, cls is null ? 0 : 1);
    }

    /// <summary>Several prefix tokens (class, distillation, registers; separate parameters): copied side by side on the
    /// device, then <see cref="Embed"/>'s kernel with that many prefix rows. No host round trip, so a step of a
    /// distillation-token model records into a CUDA graph.</summary>
    public void EmbedTokens(Tensor patches, IReadOnlyList<Tensor> prefix, Tensor pos, Tensor x)
    {
        CheckCompute(patches, pos, x);
        int batch = patches.Dim(0), np = patches.Dim(1), d = patches.Dim(2), t = x.Dim(1);
        int k = 0;
        foreach (var p in prefix) { CheckCompute(p); k += p.Dim(1); }
        if (t != k + np || pos.Dim(1) != t || x.Dim(2) != d)
            throw new ArgumentException($"EmbedTokens: {k} prefix tokens + {patches} with {pos} into {x}");
        using var packed = k > 0 ? Allocate([k * d], ComputeType) : null;
        long at = 0;
        foreach (var p in prefix)
        {
            CopyDevice(p, packed!.View([checked((int)p.Length)], at));
            at += p.Length;
        }
        Launch("elementwise.cu", "embed_" + _suffix, PerImageBlocks(x.Length / batch, batch), (uint)batch, 1, 256, 1, 1, 0,
            patches.Pointer, packed?.Pointer ?? 0, pos.Pointer, x.Pointer, np, d, k);
    }

    /// <summary>y = x·s on the device (a copy, then the training backend's scale kernel).</summary>
    public void ScaleInto(Tensor x, float s, Tensor y)
    {
        CheckCompute(x, y);
        if (x.Length != y.Length) throw new ArgumentException($"ScaleInto: {x} -> {y}");
        if (x.Pointer != y.Pointer) CopyDevice(x, y);
        Scale(y, s);
    }

    public void MeanTokens(Tensor x, int start, Tensor y)
    {
        CheckCompute(x, y);
        int batch = x.Dim(0), t = x.Dim(1), d = x.Dim(2);
        Launch("elementwise.cu", "mean_tokens_" + _suffix, (uint)(((long)batch * d + 255) / 256), 1, 1, 256, 1, 1, 0,
            x.Pointer, y.Pointer, batch, t, d, start);
    }

    public void SelectToken(Tensor x, int index, Tensor y)
    {
        CheckCompute(x, y);
        int batch = x.Dim(0), t = x.Dim(1), d = x.Dim(2);
        Launch("elementwise.cu", "select_token_" + _suffix, (uint)(((long)batch * d + 255) / 256), 1, 1, 256, 1, 1, 0,
            x.Pointer, y.Pointer, batch, t, d, index);
    }

    public void Transpose12(Tensor x, Tensor y)
    {
        CheckCompute(x, y);
        int batch = x.Dim(0), a = x.Dim(1), c = x.Dim(2);
        Launch("elementwise.cu", "transpose12_" + _suffix, (uint)((c + 31) / 32), (uint)((a + 31) / 32), (uint)batch, 32, 8, 1, 0,
            x.Pointer, y.Pointer, a, c);
    }

    /// <summary>
    /// Records what <paramref name="body"/> queues (no host copies inside) as a CUDA graph; replaying it re-runs the
    /// same kernels on the same buffers with one launch, which removes per-kernel launch cost at small batch.
    /// </summary>
    public CudaGraph Capture(Action body) => CudaGraph.Capture(Context, body);

    ICapturedWork IGraphCapture.Capture(Action body) => Capture(body);

    private KernelProfile? _profile;

    /// <summary>Runs <paramref name="body"/> once with device events around every kernel and matrix product and returns
    /// the device time per kernel name and GEMM shape.</summary>
    public string ProfileOnce(Action body)
    {
        Synchronize();
        using var p = new KernelProfile(Context);
        _profile = p;
        try { body(); }
        finally { _profile = null; }
        Synchronize();
        return p.Report();
    }

    public void Dispose()
    {
        foreach (var kv in _decayMasks) kv.Value.Dispose();
        _decayMasks.Clear();
        DisposeFp8();
        _gemm.Dispose();
    }

    // --- launching ---

    /// <summary>Blocks along x for a (chunks, batch) grid: enough for the device, none idle; per-image work must fit in int.</summary>
    private uint PerImageBlocks(long perImage, int batch)
    {
        if (perImage >= int.MaxValue || batch > 65535) throw new NotSupportedException($"{perImage} elements per image × batch {batch}");
        long want = Math.Max(1, (long)Context.MultiprocessorCount * 16 / batch);
        return (uint)Math.Clamp((perImage + 255) / 256, 1, Math.Max(want, 1));
    }

    private void LaunchElementwise(string name, long n, params ReadOnlySpan<long> args) => LaunchGridStride("elementwise.cu", name, n, args);

    /// <summary>A grid-stride kernel over <paramref name="n"/> items: 256 threads a block, at most 16 blocks per SM.</summary>
    private void LaunchGridStride(string file, string name, long n, ReadOnlySpan<long> args)
    {
        long blocks = Math.Clamp((n + 255) / 256, 1, (long)Context.MultiprocessorCount * 16);
        Launch(file, name, (uint)blocks, 1, 1, 256, 1, 1, 0, args);
    }

    private void Launch(string file, string name, uint gx, uint gy, uint gz, uint bx, uint by, uint bz, int smem,
        params ReadOnlySpan<long> args)
    {
        var f = Context.Kernels.Function(file, name);
        var ptrs = stackalloc void*[args.Length];
        var start = _profile?.Begin();
        fixed (long* a = args)
        {
            for (int i = 0; i < args.Length; i++) ptrs[i] = a + i;
            Driver.Check(Driver.cuLaunchKernel(f, gx, gy, gz, bx, by, bz, (uint)smem, Context.Stream, ptrs, null), $"launch {name}");
        }
        if (start is not null) _profile!.End(name, start);
    }

    private readonly HashSet<(nint, int)> _sharedRaised = new();

    /// <summary>Lets <paramref name="f"/> use more than 48 KB of dynamic shared memory (an opt-in per function).</summary>
    private void EnsureDynamicShared(nint f, int bytes)
    {
        if (!_sharedRaised.Add((f, bytes))) return;
        const int maxDynamicSharedSizeBytes = 8; // CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
        Driver.Check(Driver.cuFuncSetAttribute(f, maxDynamicSharedSizeBytes, bytes), "cuFuncSetAttribute");
    }

    // Kernel arguments travel as 8-byte slots; 4-byte parameters read the low half (little-endian).
    private static long Bits(float f) => BitConverter.SingleToInt32Bits(f);

    private static bool Aligned16(params ReadOnlySpan<Tensor> ts)
    {
        foreach (var t in ts) if ((t.Pointer & 15) != 0) return false;
        return true;
    }

    private void CheckDevice(Tensor t)
    {
        if (t.Device != Device) throw new ArgumentException($"CUDA backend on {Device} got a tensor on {t.Device}");
    }

    private void CheckCompute(params ReadOnlySpan<Tensor> ts)
    {
        foreach (var t in ts)
        {
            CheckDevice(t);
            if (t.DType != ComputeType) throw new ArgumentException($"CUDA backend computes in {ComputeType}; got {t}");
        }
    }
}
