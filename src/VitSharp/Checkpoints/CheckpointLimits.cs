namespace VitSharp.Checkpoints;

/// <summary>
/// Budgets every checkpoint reader checks before it allocates (docs/LIMITS.md). A file that exceeds one is refused with a
/// <see cref="CheckpointException"/> naming the file (and tensor), never with an out-of-memory crash.
/// </summary>
public static class CheckpointLimits
{
    /// <summary>Environment variable that sets <see cref="MaxTotalBytes"/> (bytes; suffixes K, M, G accepted).</summary>
    public const string TotalBytesVariable = "VITSHARP_MAX_CHECKPOINT_BYTES";

    /// <summary>Most bytes of tensor data one checkpoint may hold, counted as stored (safetensors ranges, zip entries'
    /// declared sizes) and as decoded float32: 16 GiB by default, enough for ViT-G/14 in fp32 twice over.</summary>
    public static long MaxTotalBytes { get; set; } = FromEnvironment(TotalBytesVariable, 16L << 30);

    /// <summary>Most elements of one tensor: a .NET array's limit (about 2^31).</summary>
    public static long MaxTensorElements => Array.MaxLength;

    /// <summary>Deepest nesting of dicts the pickle reader follows (a state dict is 1–3 deep).</summary>
    public const int MaxPickleDepth = 64;

    /// <summary>Size of data.pkl, the pickle program itself.</summary>
    public const long MaxPickleBytes = 1L << 30;

    /// <summary>Most bytes a zip entry (a `.npz` array, a `.pt` storage, `data.pkl`) may declare per byte it occupies
    /// compressed, once it declares more than <see cref="CompressionRatioFloor"/>: 1000, settable in code. Deflate's
    /// own ceiling is 1032:1, reached only by one byte value repeated; float weights deflate to about 1.1:1 and even
    /// sparse ones stay far below 100:1, so an entry past 1000:1 is a bomb (or declares a size its data cannot give)
    /// and is refused from the zip directory, before it is inflated. (NumPy's <c>savez</c> and <c>torch.save</c> store
    /// entries uncompressed, 1:1.) The one real tensor it refuses: one of more than a MiB of a single repeated value in
    /// a compressed (<c>savez_compressed</c>) file.</summary>
    public static int MaxCompressionRatio { get; set; } = 1000;

    /// <summary>Entries that declare at most this many bytes (1 MiB) are not held to <see cref="MaxCompressionRatio"/>:
    /// small constant tensors (zero biases) compress past it, and each costs at most this, charged to the budget.</summary>
    public const long CompressionRatioFloor = 1L << 20;

    /// <summary>Refuses a zip entry whose declared (inflated) size passes <see cref="MaxCompressionRatio"/> times its
    /// compressed size, naming the file, the tensor and the entry; reads only the zip directory.</summary>
    public static void CheckCompression(System.IO.Compression.ZipArchiveEntry entry, string file, string? tensor)
    {
        long inflated = entry.Length, compressed = entry.CompressedLength;
        if (inflated <= CompressionRatioFloor) return;
        if (compressed <= 0 || inflated / compressed >= MaxCompressionRatio)
            throw new CheckpointException(file,
                $"zip entry '{entry.FullName}' declares {inflated} bytes from {compressed} compressed " +
                $"({(compressed <= 0 ? "unbounded" : $"{inflated / compressed}:1")}), past the {MaxCompressionRatio}:1 that real tensor data compresses to " +
                "(a zip bomb); refused before inflating it (CheckpointLimits.MaxCompressionRatio)", tensor);
    }

    internal static long FromEnvironment(string variable, long fallback)
    {
        var s = Environment.GetEnvironmentVariable(variable)?.Trim();
        if (string.IsNullOrEmpty(s)) return fallback;
        long scale = char.ToUpperInvariant(s[^1]) switch { 'K' => 1L << 10, 'M' => 1L << 20, 'G' => 1L << 30, _ => 1 };
        if (scale != 1) s = s[..^1];
        return long.TryParse(s, out var v) && v > 0 ? checked(v * scale)
            : throw new VitSharpException($"{variable}={Environment.GetEnvironmentVariable(variable)} is not a positive byte count");
    }

    /// <summary>Elements of a shape with overflow checks: a typed error instead of a wrapped or negative product.</summary>
    public static long Elements(ReadOnlySpan<int> shape, string file, string? tensor = null)
    {
        long n = 1;
        foreach (var d in shape)
        {
            if (d < 0) throw new CheckpointException(file, $"negative dimension in shape {Tensors.Shape.Format(shape)}", tensor);
            if (d != 0 && n > long.MaxValue / d)
                throw new CheckpointException(file, $"shape {Tensors.Shape.Format(shape)} overflows 64-bit arithmetic", tensor);
            n *= d;
        }
        return n;
    }

    /// <summary>Refuses a tensor of more elements than one array holds.</summary>
    public static void CheckTensor(long elements, ReadOnlySpan<int> shape, string file, string? tensor)
    {
        if (elements > MaxTensorElements)
            throw new CheckpointException(file, $"shape {Tensors.Shape.Format(shape)} has {elements} elements, more than the {MaxTensorElements} one tensor may hold", tensor);
    }

    /// <summary>Adds a tensor's bytes to a running total and refuses the checkpoint once it passes the budget
    /// (<see cref="MaxTotalBytes"/> when null).</summary>
    public static void Charge(ref long total, long bytes, long? budget, string file, string? tensor)
    {
        long max = budget ?? MaxTotalBytes;
        total = bytes > long.MaxValue - total ? long.MaxValue : total + bytes;
        if (total > max)
            throw new CheckpointException(file, $"tensor data passes the budget of {max} bytes ({TotalBytesVariable} or LoadOptions.MaxTotalBytes raises it)", tensor);
    }
}
