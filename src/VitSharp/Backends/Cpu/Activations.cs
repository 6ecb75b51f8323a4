using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace VitSharp.Backends.Cpu;

/// <summary>
/// Pointwise functions on host floats. GELU "exact" uses erf like PyTorch's default; "tanh" is Google's approximation.
/// The scalar double-precision functions below are the references; Apply runs the vector versions where AVX-512 is there.
/// </summary>
internal static class Activations
{
    public static void Apply(Activation act, ReadOnlySpan<float> x, Span<float> y)
    {
        if (y.Length < x.Length) throw new ArgumentException("output shorter than input");
        switch (act)
        {
            case Activation.None: if (!x.Overlaps(y)) x.CopyTo(y); break;
            case Activation.Tanh: TensorPrimitives.Tanh(x, y); break;
            case Activation.Gelu: VectorGelu.Erf(x, y); break;
            case Activation.GeluTanh: VectorGelu.Tanh(x, y); break;
            case Activation.Relu: TensorPrimitives.Max(x, 0f, y); break;
            case Activation.Silu: SigmoidGated(x, 1f, y); break;
            case Activation.QuickGelu: SigmoidGated(x, 1.702f, y); break;
            default: throw new ArgumentOutOfRangeException(nameof(act));
        }
    }

    /// <summary>y = x·σ(a·x) (SiLU with a = 1, OpenAI CLIP's QuickGELU with a = 1.702); y may be x.</summary>
    private static void SigmoidGated(ReadOnlySpan<float> x, float a, Span<float> y)
    {
        const int chunk = 1024;
        Span<float> s = stackalloc float[chunk];
        for (int o = 0; o < x.Length; o += chunk)
        {
            int n = Math.Min(chunk, x.Length - o);
            var xs = x.Slice(o, n);
            TensorPrimitives.Multiply(xs, a, s[..n]);
            TensorPrimitives.Sigmoid(s[..n], s[..n]);
            TensorPrimitives.Multiply(xs, s[..n], y.Slice(o, n));
        }
    }

    public static float GeluErf(float x) => (float)(0.5 * x * (1.0 + Erf(x * 0.70710678118654752)));

    public static float GeluTanh(float x)
    {
        const double k = 0.79788456080286536; // sqrt(2/pi)
        double xd = x;
        return (float)(0.5 * xd * (1.0 + Math.Tanh(k * (xd + 0.044715 * xd * xd * xd))));
    }

    /// <summary>erf in double precision (W. J. Cody's rational approximations, |error| below 1e-15).</summary>
    public static double Erf(double x)
    {
        double ax = Math.Abs(x);
        if (ax < 0.5)
        {
            // erf(x) = x·P(x²)/Q(x²)
            double t = x * x;
            double p = ((((1.857777061846031526730e-1 * t + 3.161123743870565596947e0) * t + 1.138641541510501556495e2) * t
                + 3.774852376853020208137e2) * t + 3.209377589138469472562e3);
            double q = ((((t + 2.360129095234412093499e1) * t + 2.440246379344441733056e2) * t
                + 1.282616526077372275645e3) * t + 2.844236833439170622273e3);
            return x * p / q;
        }
        return x < 0 ? -(1.0 - Erfc(ax)) : 1.0 - Erfc(ax);
    }

    private static double Erfc(double ax)
    {
        if (ax >= 6.0) return 0.0;
        double r;
        if (ax < 4.0)
        {
            double p = (((((((2.15311535474403846e-8 * ax + 5.64188496988670089e-1) * ax + 8.88314979438837594e0) * ax
                + 6.61191906371416295e1) * ax + 2.98635138197400131e2) * ax + 8.81952221241769090e2) * ax
                + 1.71204761263407058e3) * ax + 2.05107837782607147e3) * ax + 1.23033935479799725e3;
            double q = (((((((ax + 1.57449261107098347e1) * ax + 1.17693950891312499e2) * ax + 5.37181101862009858e2) * ax
                + 1.62138957456669019e3) * ax + 3.29079923573345963e3) * ax + 4.36261909014324716e3) * ax
                + 3.43936767414372164e3) * ax + 1.23033935480374942e3;
            r = p / q;
        }
        else
        {
            double z = 1.0 / (ax * ax);
            double p = ((((1.63153871373020978e-2 * z + 3.05326634961232344e-1) * z + 3.60344899949804439e-1) * z
                + 1.25781726111229246e-1) * z + 1.60837851487422766e-2) * z + 6.58749161529837803e-4;
            double q = ((((z + 2.56852019228982242e0) * z + 1.87295284992346725e0) * z + 5.27905102951428412e-1) * z
                + 6.05183413124413191e-2) * z + 2.33520497626869185e-3;
            r = (0.56418958354775628695 - z * p / q) / ax;
        }
        return Math.Exp(-ax * ax) * r;
    }
}
