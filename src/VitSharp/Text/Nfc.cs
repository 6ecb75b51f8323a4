using System.Globalization;
using System.Text;

namespace VitSharp.Text;

/// <summary>
/// Unicode normalisation form C without ICU: VitSharp runs with invariant globalization, where
/// <see cref="string.Normalize()"/> returns its input unchanged. Canonical decomposition (recursive, Hangul
/// algorithmically), canonical ordering by combining class, then canonical composition (composition exclusions
/// honoured), from the table in Resources/nfc.txt (generated from Python's unicodedata). Text that holds no character
/// at or above U+0300 is returned as it is (NFC leaves it unchanged).
/// </summary>
public static class Nfc
{
    private const int SBase = 0xAC00, LBase = 0x1100, VBase = 0x1161, TBase = 0x11A7, LCount = 19, VCount = 21, TCount = 28,
        NCount = VCount * TCount, SCount = LCount * NCount;

    private static readonly Lazy<(Dictionary<int, int[]> Decomp, Dictionary<int, int> Ccc, Dictionary<(int, int), int> Comp)> Tables = new(Load);

    private static (Dictionary<int, int[]>, Dictionary<int, int>, Dictionary<(int, int), int>) Load()
    {
        var decomp = new Dictionary<int, int[]>();
        var ccc = new Dictionary<int, int>();
        var comp = new Dictionary<(int, int), int>();
        using var s = typeof(Nfc).Assembly.GetManifestResourceStream("VitSharp.nfc.txt")
            ?? throw new InvalidOperationException("the NFC table resource is missing from the assembly");
        using var r = new StreamReader(s);
        for (string? line; (line = r.ReadLine()) is not null;)
        {
            if (line.Length == 0 || line[0] == '#') continue;
            var f = line.Split(' ');
            int cp = int.Parse(f[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            if (f[0] == "c") { ccc[cp] = int.Parse(f[2], CultureInfo.InvariantCulture); continue; }
            var parts = f.Skip(2).Select(p => int.Parse(p, NumberStyles.HexNumber, CultureInfo.InvariantCulture)).ToArray();
            decomp[cp] = parts;
            if (f[0] == "d" && parts.Length == 2) comp[(parts[0], parts[1])] = cp;
        }
        return (decomp, ccc, comp);
    }

    public static string Normalize(string text)
    {
        bool simple = true;
        foreach (var ch in text)
            if (ch >= 0x300) { simple = false; break; }
        if (simple) return text;
        var (decomp, ccc, comp) = Tables.Value;
        int Ccc(int cp) => ccc.TryGetValue(cp, out var c) ? c : 0;

        // 1. Full canonical decomposition.
        var cps = new List<int>(text.Length);
        void Decompose(int cp)
        {
            if (cp >= SBase && cp < SBase + SCount)
            {
                int si = cp - SBase;
                cps.Add(LBase + si / NCount);
                cps.Add(VBase + si % NCount / TCount);
                if (si % TCount != 0) cps.Add(TBase + si % TCount);
            }
            else if (decomp.TryGetValue(cp, out var d)) foreach (var x in d) Decompose(x);
            else cps.Add(cp);
        }
        foreach (var rune in text.EnumerateRunes()) Decompose(rune.Value);

        // 2. Canonical ordering: a stable sort of each run of non-starters by combining class.
        for (int i = 1; i < cps.Count; i++)
        {
            int c = Ccc(cps[i]);
            if (c == 0) continue;
            for (int j = i; j > 0 && Ccc(cps[j - 1]) > c; j--) (cps[j - 1], cps[j]) = (cps[j], cps[j - 1]);
        }

        // 3. Canonical composition.
        var o = new List<int>(cps.Count);
        int starter = -1, lastCcc = 0;
        foreach (var cp in cps)
        {
            int c = Ccc(cp);
            if (starter >= 0 && (lastCcc < c || lastCcc == 0 && o.Count - 1 == starter))
            {
                int s = o[starter];
                int composed = -1;
                if (s >= LBase && s < LBase + LCount && cp >= VBase && cp < VBase + VCount)
                    composed = SBase + ((s - LBase) * VCount + (cp - VBase)) * TCount;
                else if (s >= SBase && s < SBase + SCount && (s - SBase) % TCount == 0 && cp > TBase && cp < TBase + TCount)
                    composed = s + (cp - TBase);
                else if (comp.TryGetValue((s, cp), out var k)) composed = k;
                if (composed >= 0)
                {
                    o[starter] = composed;
                    continue;
                }
            }
            if (c == 0) { starter = o.Count; lastCcc = 0; }
            else lastCcc = c;
            o.Add(cp);
        }
        var sb = new StringBuilder(o.Count);
        foreach (var cp in o) sb.Append(char.ConvertFromUtf32(cp));
        return sb.ToString();
    }
}
