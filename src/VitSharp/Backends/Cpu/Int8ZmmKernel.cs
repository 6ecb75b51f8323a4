using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace VitSharp.Backends.Cpu;

/// <summary>
/// The int8 micro-kernel on 512-bit <c>vpdpbusd</c> (AVX512-VNNI), which .NET 10 does not expose (its VNNI API is the
/// 256-bit <c>AvxVnni</c>; <c>Avx10v1</c> would carry the 512-bit form but these Xeons and Zen 5 do not report AVX10):
/// a few hundred bytes of x86-64 emitted once at run time into an executable page, the way oneDNN's xbyak kernels are,
/// and called through a function pointer. Every instruction is encoded by <see cref="Emitter"/> below; a test checks
/// the sums against the <c>AvxVnni</c> and portable kernels, bit for bit (they are integer sums).
///
/// The tile: 8 rows × 32 output channels, 16 zmm accumulators (zmm16–31: caller-saved on every ABI), the two
/// 16-channel weight panels of <see cref="VitSharp.Tensors.Int8Matrix"/> read as one zmm each per group of 4 bytes of K,
/// each row's 4 activation bytes broadcast (vpbroadcastd), 16 vpdpbusd per group — twice the multiply-adds of the
/// 256-bit kernel per instruction. The int32 tile goes to a 1 KiB buffer; the C# epilogue does the rest.
/// Only on Linux x86-64 (System V calling convention); elsewhere, or with VITSHARP_NO_JIT_KERNELS=1, or where the
/// page cannot be made executable, <see cref="IsSupported"/> is false and the <c>AvxVnni</c> kernel runs.
/// </summary>
internal static unsafe class Int8ZmmKernel
{
    public const int Rows = 8, Cols = 32;

    /// <summary>void kernel(byte* a, sbyte* b0, sbyte* b1, long groups, long kp, int* out): out[r·32 + c] = Σ over the
    /// groups g (of 4 bytes of K) of a[r·kp + 4g + i]·b(c)[64g + 4(c mod 16) + i], b0 for c &lt; 16, b1 above.</summary>
    private static readonly delegate* unmanaged<byte*, sbyte*, sbyte*, long, long, int*, void> Code = Build();

    /// <summary>True when the CPU has AVX512-VNNI (CPUID.7.0:ECX bit 11) and AVX512F, the OS is Linux x86-64, and
    /// the code page could be made executable.</summary>
    public static bool IsSupported => Code != null;

    /// <summary>The 8×32 int32 sums of a tile into <paramref name="out"/> (256 ints).</summary>
    public static void Run(byte* a, long kp, sbyte* b0, sbyte* b1, int groups, int* @out)
    {
        // The loop counts down and tests after the body: no groups would mean 2⁶⁴ iterations.
        if (groups <= 0) { new Span<int>(@out, Rows * Cols).Clear(); return; }
        Code(a, b0, b1, groups, kp, @out);
    }

    public static bool HasAvx512Vnni()
    {
        if (!X86Base.IsSupported || !Avx512F.IsSupported) return false;
        var (_, _, ecx, _) = X86Base.CpuId(7, 0);
        return (ecx & (1 << 11)) != 0;
    }

    private static delegate* unmanaged<byte*, sbyte*, sbyte*, long, long, int*, void> Build()
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64 || !HasAvx512Vnni()) return null;
        if (Environment.GetEnvironmentVariable("VITSHARP_NO_JIT_KERNELS") == "1") return null;
        byte[] code = Emit();
        nuint size = (nuint)Environment.SystemPageSize;
        try
        {
            nint page = Mmap(0, size, ProtRead | ProtWrite, MapPrivate | MapAnonymous, -1, 0);
            if (page == -1 || page == 0) return null;
            Marshal.Copy(code, 0, page, code.Length);
            if (Mprotect(page, size, ProtRead | ProtExec) != 0) { _ = Munmap(page, size); return null; }   // W^X: never both
            return (delegate* unmanaged<byte*, sbyte*, sbyte*, long, long, int*, void>)page;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return null;   // a libc without these names (the 256-bit kernel runs)
        }
    }

    /// <summary>The kernel's bytes (System V: rdi = a, rsi = b0, rdx = b1, rcx = groups ≥ 1, r8 = kp, r9 = out).</summary>
    internal static byte[] Emit()
    {
        var e = new Emitter();
        const int rax = 0, rcx = 1, rdx = 2, rsi = 6, rdi = 7, r8 = 8, r9 = 9, r10 = 10, r11 = 11;
        _ = rax;
        e.Lea(r10, rdi, r8, 4);          // r10 = a + 4·kp (rows 4–7)
        e.Lea(r11, r8, r8, 2);           // r11 = 3·kp
        for (int z = 16; z < 32; z++) e.Vpxord(z, z, z);
        int loop = e.Length;
        e.Vmovdqu32Load(0, rsi, 0);
        e.Vmovdqu32Load(1, rdx, 0);
        (int Base, int Index, int Scale)[] rows =
        [
            (rdi, -1, 1), (rdi, r8, 1), (rdi, r8, 2), (rdi, r11, 1),
            (r10, -1, 1), (r10, r8, 1), (r10, r8, 2), (r10, r11, 1),
        ];
        for (int r = 0; r < Rows; r++)
        {
            int x = 2 + (r & 1);          // zmm2 / zmm3 in turn
            e.Vpbroadcastd(x, rows[r].Base, rows[r].Index, rows[r].Scale);
            e.Vpdpbusd(16 + 2 * r, x, 0);
            e.Vpdpbusd(17 + 2 * r, x, 1);
        }
        e.AddImm8(rdi, 4);
        e.AddImm8(r10, 4);
        e.AddImm8(rsi, 64);
        e.AddImm8(rdx, 64);
        e.Dec(rcx);
        e.Jnz(loop);
        for (int j = 0; j < 16; j++) e.Vmovdqu32Store(r9, 64 * j, 16 + j);
        e.Vzeroupper();
        e.Ret();
        return e.ToArray();
    }

    /// <summary>The few x86-64 encodings the kernel needs (Intel SDM vol. 2, §2.7: the EVEX prefix).</summary>
    internal sealed class Emitter
    {
        private readonly List<byte> _b = [];
        public int Length => _b.Count;
        public byte[] ToArray() => [.. _b];

        // EVEX: 62, P0 = R̄ X̄ B̄ R̄' 0 0 m m, P1 = W v̄v̄v̄v̄ 1 p p, P2 = z L'L b V̄' a a a (512-bit: L'L = 10, no mask).
        private void Evex(int mm, int pp, int reg, int vvvv, int b, int x, int rPrime)
        {
            _b.Add(0x62);
            _b.Add((byte)((((reg >> 3) & 1) ^ 1) << 7 | (x ^ 1) << 6 | (b ^ 1) << 5 | (rPrime ^ 1) << 4 | mm));
            _b.Add((byte)(((~vvvv) & 15) << 3 | 1 << 2 | pp));
            _b.Add((byte)(0b10 << 5 | (((vvvv >> 4) & 1) ^ 1) << 3));
        }

        /// <summary>op zmm(reg), zmm(vvvv), zmm(rm).</summary>
        private void EvexRegs(int mm, int pp, byte opcode, int reg, int vvvv, int rm)
        {
            Evex(mm, pp, reg, vvvv, b: (rm >> 3) & 1, x: (rm >> 4) & 1, rPrime: (reg >> 4) & 1);
            _b.Add(opcode);
            _b.Add((byte)(0b11 << 6 | (reg & 7) << 3 | (rm & 7)));
        }

        /// <summary>op zmm(reg), [base + index·scale + disp] (no vvvv operand).</summary>
        private void EvexMem(int mm, int pp, byte opcode, int reg, int @base, int index, int scale, int disp)
        {
            Evex(mm, pp, reg, vvvv: 0, b: (@base >> 3) & 1, x: index < 0 ? 0 : (index >> 3) & 1, rPrime: (reg >> 4) & 1);
            _b.Add(opcode);
            ModRmMem(reg, @base, index, scale, disp);
        }

        private void ModRmMem(int reg, int @base, int index, int scale, int disp)
        {
            bool needDisp = disp != 0 || (@base & 7) == 5;          // rbp/r13 as base need a displacement
            int mod = needDisp ? 0b10 : 0b00;                        // disp32 (never EVEX's scaled disp8)
            if (index < 0 && (@base & 7) != 4)
                _b.Add((byte)(mod << 6 | (reg & 7) << 3 | (@base & 7)));
            else
            {
                if (index == 4) throw new ArgumentException("rsp cannot be an index");
                int ss = scale switch { 1 => 0, 2 => 1, 4 => 2, 8 => 3, _ => throw new ArgumentException($"scale {scale}") };
                _b.Add((byte)(mod << 6 | (reg & 7) << 3 | 0b100));
                _b.Add((byte)(ss << 6 | ((index < 0 ? 4 : index) & 7) << 3 | (@base & 7)));
            }
            if (needDisp) { _b.Add((byte)disp); _b.Add((byte)(disp >> 8)); _b.Add((byte)(disp >> 16)); _b.Add((byte)(disp >> 24)); }
        }

        // EVEX.512.66.0F.W0 EF /r
        public void Vpxord(int dst, int a, int b) => EvexRegs(mm: 1, pp: 1, 0xEF, dst, a, b);
        // EVEX.512.66.0F38.W0 50 /r: dst += Σ₄ u8(a)·s8(b) per int32 lane
        public void Vpdpbusd(int dst, int a, int b) => EvexRegs(mm: 2, pp: 1, 0x50, dst, a, b);
        // EVEX.512.F3.0F.W0 6F /r
        public void Vmovdqu32Load(int dst, int @base, int disp) => EvexMem(mm: 1, pp: 2, 0x6F, dst, @base, -1, 1, disp);
        // EVEX.512.F3.0F.W0 7F /r
        public void Vmovdqu32Store(int @base, int disp, int src) => EvexMem(mm: 1, pp: 2, 0x7F, src, @base, -1, 1, disp);
        // EVEX.512.66.0F38.W0 58 /r (m32 source)
        public void Vpbroadcastd(int dst, int @base, int index, int scale) => EvexMem(mm: 2, pp: 1, 0x58, dst, @base, index, scale, 0);

        private void Rex(int reg, int index, int @base) =>
            _b.Add((byte)(0x48 | ((reg >> 3) & 1) << 2 | ((index >> 3) & 1) << 1 | ((@base >> 3) & 1)));

        /// <summary>lea dst, [base + index·scale].</summary>
        public void Lea(int dst, int @base, int index, int scale)
        {
            Rex(dst, index, @base);
            _b.Add(0x8D);
            ModRmMem(dst, @base, index, scale, 0);
        }

        /// <summary>add reg, imm8 (sign-extended).</summary>
        public void AddImm8(int reg, sbyte imm)
        {
            Rex(0, 0, reg);
            _b.Add(0x83);
            _b.Add((byte)(0b11 << 6 | (reg & 7)));
            _b.Add((byte)imm);
        }

        public void Dec(int reg) { Rex(0, 0, reg); _b.Add(0xFF); _b.Add((byte)(0b11 << 6 | 1 << 3 | (reg & 7))); }

        /// <summary>jnz to an earlier offset (rel32).</summary>
        public void Jnz(int target)
        {
            int rel = target - (_b.Count + 6);
            _b.Add(0x0F); _b.Add(0x85);
            _b.Add((byte)rel); _b.Add((byte)(rel >> 8)); _b.Add((byte)(rel >> 16)); _b.Add((byte)(rel >> 24));
        }

        public void Vzeroupper() { _b.Add(0xC5); _b.Add(0xF8); _b.Add(0x77); }
        public void Ret() => _b.Add(0xC3);
    }

    private const int ProtRead = 1, ProtWrite = 2, ProtExec = 4, MapPrivate = 2, MapAnonymous = 0x20;

    [DllImport("libc", EntryPoint = "mmap", SetLastError = false)]
    private static extern nint Mmap(nint addr, nuint length, int prot, int flags, int fd, nint offset);

    [DllImport("libc", EntryPoint = "mprotect", SetLastError = false)]
    private static extern int Mprotect(nint addr, nuint length, int prot);

    [DllImport("libc", EntryPoint = "munmap", SetLastError = false)]
    private static extern int Munmap(nint addr, nuint length);
}
