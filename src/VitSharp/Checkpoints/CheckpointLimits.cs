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
