using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace VitSharp.Backends.Cpu;

/// <summary>
/// P·V micro-kernels for attention: o[6 rows, W] = Σ_{j&lt;n} p[r, j]·v[j, :W] with the rows of V read in place
/// (W = 64, 32 or 16 columns = 4, 2 or 1 Vector512), so head widths that are multiples of 16 waste no lanes.
/// 6 rows × 4 vectors = 24 accumulators + 4 V vectors + 1 broadcast fit the 32 zmm registers; per j: 4 loads,
/// 6 broadcasts, 24 FMAs. Hand-unrolled: the JIT keeps named locals in registers.
/// </summary>
internal static unsafe class AttentionKernels
{
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Pv6x64(float* p, int ldp, float* v, int ldv, int n, float* o, int ldo)
    {
        Vector512<float> c00 = default, c01 = default, c02 = default, c03 = default;
        Vector512<float> c10 = default, c11 = default, c12 = default, c13 = default;
        Vector512<float> c20 = default, c21 = default, c22 = default, c23 = default;
        Vector512<float> c30 = default, c31 = default, c32 = default, c33 = default;
        Vector512<float> c40 = default, c41 = default, c42 = default, c43 = default;
        Vector512<float> c50 = default, c51 = default, c52 = default, c53 = default;
        float* p0 = p, p1 = p + ldp, p2 = p + 2 * ldp, p3 = p + 3 * ldp, p4 = p + 4 * ldp, p5 = p + 5 * ldp;
        for (int j = 0; j < n; j++, v += ldv)
        {
            var v0 = Vector512.Load(v); var v1 = Vector512.Load(v + 16); var v2 = Vector512.Load(v + 32); var v3 = Vector512.Load(v + 48);
            var a = Vector512.Create(p0[j]);
            c00 = Vector512.FusedMultiplyAdd(a, v0, c00); c01 = Vector512.FusedMultiplyAdd(a, v1, c01); c02 = Vector512.FusedMultiplyAdd(a, v2, c02); c03 = Vector512.FusedMultiplyAdd(a, v3, c03);
            a = Vector512.Create(p1[j]);
            c10 = Vector512.FusedMultiplyAdd(a, v0, c10); c11 = Vector512.FusedMultiplyAdd(a, v1, c11); c12 = Vector512.FusedMultiplyAdd(a, v2, c12); c13 = Vector512.FusedMultiplyAdd(a, v3, c13);
            a = Vector512.Create(p2[j]);
            c20 = Vector512.FusedMultiplyAdd(a, v0, c20); c21 = Vector512.FusedMultiplyAdd(a, v1, c21); c22 = Vector512.FusedMultiplyAdd(a, v2, c22); c23 = Vector512.FusedMultiplyAdd(a, v3, c23);
            a = Vector512.Create(p3[j]);
            c30 = Vector512.FusedMultiplyAdd(a, v0, c30); c31 = Vector512.FusedMultiplyAdd(a, v1, c31); c32 = Vector512.FusedMultiplyAdd(a, v2, c32); c33 = Vector512.FusedMultiplyAdd(a, v3, c33);
            a = Vector512.Create(p4[j]);
            c40 = Vector512.FusedMultiplyAdd(a, v0, c40); c41 = Vector512.FusedMultiplyAdd(a, v1, c41); c42 = Vector512.FusedMultiplyAdd(a, v2, c42); c43 = Vector512.FusedMultiplyAdd(a, v3, c43);
            a = Vector512.Create(p5[j]);
            c50 = Vector512.FusedMultiplyAdd(a, v0, c50); c51 = Vector512.FusedMultiplyAdd(a, v1, c51); c52 = Vector512.FusedMultiplyAdd(a, v2, c52); c53 = Vector512.FusedMultiplyAdd(a, v3, c53);
        }
        Store4(o, c00, c01, c02, c03);
        Store4(o + ldo, c10, c11, c12, c13);
        Store4(o + 2 * ldo, c20, c21, c22, c23);
        Store4(o + 3 * ldo, c30, c31, c32, c33);
        Store4(o + 4 * ldo, c40, c41, c42, c43);
        Store4(o + 5 * ldo, c50, c51, c52, c53);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Pv6x32(float* p, int ldp, float* v, int ldv, int n, float* o, int ldo)
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector512<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        float* p0 = p, p1 = p + ldp, p2 = p + 2 * ldp, p3 = p + 3 * ldp, p4 = p + 4 * ldp, p5 = p + 5 * ldp;
        for (int j = 0; j < n; j++, v += ldv)
        {
            var v0 = Vector512.Load(v); var v1 = Vector512.Load(v + 16);
            var a = Vector512.Create(p0[j]); c00 = Vector512.FusedMultiplyAdd(a, v0, c00); c01 = Vector512.FusedMultiplyAdd(a, v1, c01);
            a = Vector512.Create(p1[j]); c10 = Vector512.FusedMultiplyAdd(a, v0, c10); c11 = Vector512.FusedMultiplyAdd(a, v1, c11);
            a = Vector512.Create(p2[j]); c20 = Vector512.FusedMultiplyAdd(a, v0, c20); c21 = Vector512.FusedMultiplyAdd(a, v1, c21);
            a = Vector512.Create(p3[j]); c30 = Vector512.FusedMultiplyAdd(a, v0, c30); c31 = Vector512.FusedMultiplyAdd(a, v1, c31);
            a = Vector512.Create(p4[j]); c40 = Vector512.FusedMultiplyAdd(a, v0, c40); c41 = Vector512.FusedMultiplyAdd(a, v1, c41);
            a = Vector512.Create(p5[j]); c50 = Vector512.FusedMultiplyAdd(a, v0, c50); c51 = Vector512.FusedMultiplyAdd(a, v1, c51);
        }
        Vector512.Store(c00, o); Vector512.Store(c01, o + 16);
        Vector512.Store(c10, o + ldo); Vector512.Store(c11, o + ldo + 16);
        Vector512.Store(c20, o + 2 * ldo); Vector512.Store(c21, o + 2 * ldo + 16);
        Vector512.Store(c30, o + 3 * ldo); Vector512.Store(c31, o + 3 * ldo + 16);
        Vector512.Store(c40, o + 4 * ldo); Vector512.Store(c41, o + 4 * ldo + 16);
        Vector512.Store(c50, o + 5 * ldo); Vector512.Store(c51, o + 5 * ldo + 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Pv6x16(float* p, int ldp, float* v, int ldv, int n, float* o, int ldo)
    {
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default;
        float* p0 = p, p1 = p + ldp, p2 = p + 2 * ldp, p3 = p + 3 * ldp, p4 = p + 4 * ldp, p5 = p + 5 * ldp;
        for (int j = 0; j < n; j++, v += ldv)
        {
            var v0 = Vector512.Load(v);
            c0 = Vector512.FusedMultiplyAdd(Vector512.Create(p0[j]), v0, c0);
            c1 = Vector512.FusedMultiplyAdd(Vector512.Create(p1[j]), v0, c1);
            c2 = Vector512.FusedMultiplyAdd(Vector512.Create(p2[j]), v0, c2);
            c3 = Vector512.FusedMultiplyAdd(Vector512.Create(p3[j]), v0, c3);
            c4 = Vector512.FusedMultiplyAdd(Vector512.Create(p4[j]), v0, c4);
            c5 = Vector512.FusedMultiplyAdd(Vector512.Create(p5[j]), v0, c5);
        }
        Vector512.Store(c0, o); Vector512.Store(c1, o + ldo); Vector512.Store(c2, o + 2 * ldo);
        Vector512.Store(c3, o + 3 * ldo); Vector512.Store(c4, o + 4 * ldo); Vector512.Store(c5, o + 5 * ldo);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store4(float* o, Vector512<float> a, Vector512<float> b, Vector512<float> c, Vector512<float> d)
    {
        Vector512.Store(a, o); Vector512.Store(b, o + 16); Vector512.Store(c, o + 32); Vector512.Store(d, o + 48);
    }
}
