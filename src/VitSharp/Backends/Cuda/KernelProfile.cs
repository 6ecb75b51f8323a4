using System.Text;

namespace VitSharp.Backends.Cuda;

/// <summary>
/// Device time per kernel and per matrix-product shape over what a body queues: an event before and after every launch
/// (which serialises nothing on one stream, but adds a little host time per op). `vit bench-train --profile`.
/// </summary>
internal sealed class KernelProfile(CudaContext ctx) : IDisposable
{
    private readonly List<(string Name, CudaEvent Start, CudaEvent End)> _spans = new();

    public CudaEvent Begin()
    {
        var e = new CudaEvent(ctx);
        e.Record();
        return e;
    }

    public void End(string name, CudaEvent start)
    {
        var e = new CudaEvent(ctx);
        e.Record();
        _spans.Add((name, start, e));
    }

    /// <summary>Totals per name, largest first, with the share of the sum.</summary>
    public string Report(int top = 40)
    {
        var totals = new Dictionary<string, (double Ms, int Count)>();
        foreach (var (name, s, e) in _spans)
        {
            float ms = e.ElapsedSince(s);
            var t = totals.GetValueOrDefault(name);
            totals[name] = (t.Ms + ms, t.Count + 1);
        }
        double sum = totals.Values.Sum(v => v.Ms);
        var sb = new StringBuilder($"profile: {sum:F3} ms of device time in {_spans.Count} ops\n");
        foreach (var (name, (ms, count)) in totals.OrderByDescending(kv => kv.Value.Ms).Take(top))
            sb.AppendLine($"  {ms,9:F3} ms {100 * ms / sum,5:F1}%  ×{count,-4} {name}");
        return sb.ToString();
    }

    public void Dispose()
    {
        foreach (var (_, s, e) in _spans) { s.Dispose(); e.Dispose(); }
        _spans.Clear();
    }
}
