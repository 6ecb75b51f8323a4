namespace VitSharp.Tensors;

/// <summary>
/// FP8 E4M3 (OCP "E4M3FN", NVIDIA's __nv_fp8_e4m3): 1 sign, 4 exponent (bias 7) and 3 mantissa bits; no infinities,
/// one NaN code per sign (S.1111.111), largest finite ±448, smallest subnormal 2⁻⁹. <see cref="FromFloat"/> rounds to
/// nearest even and saturates to ±448 as the GPU's <c>cvt.rn.satfinite.e4m3x2.f32</c> does (NaN stays NaN), so the host
/// reproduces the device's codes bit for bit. Per-tensor scaling (<see cref="Quantize"/>): value ≈ code · scale with
/// scale = max |x| / 448.
/// </summary>
public static class Fp8
{
    public const float MaxE4M3 = 448f;
    public const byte NaN = 0x7F;

    /// <summary>The E4M3 code nearest to <paramref name="x"/> (ties to even), saturated to ±448.</summary>
    public static byte FromFloat(float x)
    {
        if (float.IsNaN(x)) return NaN;
        byte sign = (byte)(float.IsNegative(x) ? 0x80 : 0);
        double a = Math.Abs((double)x);
        if (a >= MaxE4M3) return (byte)(sign | 0x7E);
        if (a < 1.0 / 64)   // subnormal range: multiples of 2⁻⁹ (a result of 8 is the smallest normal, code 0x08)
            return (byte)(sign | (int)Math.Round(a * 512, MidpointRounding.ToEven));
        int e = Math.ILogB(a);                                       // a in [2^e, 2^(e+1)), e in -6..8
        int q = (int)Math.Round((Math.ScaleB(a, -e) - 1) * 8, MidpointRounding.ToEven);
        if (q == 8) { e++; q = 0; }
        return (byte)(sign | ((e + 7) << 3) | q);                     // below 448 this never reaches the NaN code
    }

    /// <summary>The value of an E4M3 code (a NaN code gives a NaN of the code's sign, so <see cref="Code"/> inverts it).</summary>
    public static float ToFloat(byte b)
    {
        int e = (b >> 3) & 15, m = b & 7;
        if (e == 15 && m == 7) return BitConverter.Int32BitsToSingle((b & 0x80) != 0 ? unchecked((int)0xFFC00000) : 0x7FC00000);
        float v = e == 0 ? m / 512f : (1 + m / 8f) * MathF.ScaleB(1f, e - 7);
        return (b & 0x80) != 0 ? -v : v;
    }

    /// <summary>The code of a value <see cref="ToFloat"/> gives — its exact inverse on all 256 codes (−0 and the NaN of
    /// either sign included): how a stored F8_E4M3 tensor, read as values, gives back its bytes. For any other value,
    /// the nearest code (<see cref="FromFloat"/>).</summary>
    public static byte Code(float value) =>
        float.IsNaN(value) ? (byte)(float.IsNegative(value) ? 0xFF : NaN) : FromFloat(value);

    /// <summary>The per-tensor scale that maps max |x| onto 448 (1 for an all-zero tensor).</summary>
    public static float ScaleFor(float absMax) => absMax > 0 && float.IsFinite(absMax) ? absMax / MaxE4M3 : 1f;

    /// <summary>Per-tensor quantisation: codes of x / scale, scale = max |x| / 448.</summary>
    public static (byte[] Codes, float Scale) Quantize(ReadOnlySpan<float> x)
    {
        float amax = 0;
        foreach (var v in x) amax = MathF.Max(amax, MathF.Abs(v));
        float scale = ScaleFor(amax);
        return (Encode(x, 1f / scale), scale);
    }

    /// <summary>Codes of x · <paramref name="inverseScale"/>, the product rounded to fp32 first, as the device computes it.</summary>
    public static byte[] Encode(ReadOnlySpan<float> x, float inverseScale)
    {
        var codes = new byte[x.Length];
        for (int i = 0; i < x.Length; i++) codes[i] = FromFloat(x[i] * inverseScale);
        return codes;
    }

    /// <summary>code · scale for each code.</summary>
    public static float[] Decode(ReadOnlySpan<byte> codes, float scale)
    {
        var x = new float[codes.Length];
        for (int i = 0; i < codes.Length; i++) x[i] = ToFloat(codes[i]) * scale;
        return x;
    }
}
