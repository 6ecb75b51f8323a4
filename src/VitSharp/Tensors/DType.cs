namespace VitSharp.Tensors;

/// <summary>Element types a tensor can store. Compute is fp32 on the CPU; bf16/f16 are storage formats.</summary>
public enum DType { F32, BF16, F16, I8, I64, F8E4M3 }

/// <summary>Element sizes and names of the data types.</summary>
public static class DTypeExtensions
{
    public static int SizeOf(this DType dtype) => dtype switch
    {
        DType.F32 => 4,
        DType.BF16 or DType.F16 => 2,
        DType.I8 or DType.F8E4M3 => 1,
        DType.I64 => 8,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype)),
    };
}
