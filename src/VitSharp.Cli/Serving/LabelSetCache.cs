using VitSharp.Checkpoints;
using VitSharp.Inference;

namespace VitSharp.Cli.Serving;

/// <summary>
/// The text embeddings of label sets (labels × templates, ensembled per label) that /v1/zeroshot requests asked for,
/// least recently used evicted past <see cref="Capacity"/> sets: a repeated label set costs no text-tower pass.
/// Concurrent requests for a set not yet cached share one computation. Each entry holds labels × dim floats, so the
/// cache holds at most Capacity × max-labels × dim × 4 bytes.
/// </summary>
public sealed class LabelSetCache(ZeroShotModel model, int capacity)
{
    private readonly Dictionary<string, LinkedListNode<(string Key, Task<HostArray> Value)>> _map = new(StringComparer.Ordinal);
    private readonly LinkedList<(string Key, Task<HostArray> Value)> _order = new();
    private long _hits, _misses;

    /// <summary>Label sets kept at most.</summary>
    public int Capacity { get; } = Math.Max(1, capacity);

    /// <summary>Lookups answered from the cache (including ones that joined a computation under way).</summary>
    public long Hits => Interlocked.Read(ref _hits);

    /// <summary>Lookups that ran the text tower.</summary>
    public long Misses => Interlocked.Read(ref _misses);

    /// <summary>Label sets held now.</summary>
    public int Count { get { lock (_map) return _map.Count; } }

    /// <summary>The (labels, dim) embeddings of this label set and whether they were cached already.</summary>
    public (Task<HostArray> Embeddings, bool Hit) Get(IReadOnlyList<string> labels, IReadOnlyList<string> templates)
    {
        // \u0001 cannot occur in a label or template (the server refuses control characters), so keys do not collide.
        var key = string.Join('\u0001', labels) + '\u0002' + string.Join('\u0001', templates);
        Task<HostArray> task;
        lock (_map)
        {
            if (_map.TryGetValue(key, out var node))
            {
                _order.Remove(node);
                _order.AddFirst(node);
                _hits++;
                return (node.Value.Value, true);
            }
            _misses++;
            task = Task.Run(() => model.EmbedLabels(labels, templates));
            _map[key] = _order.AddFirst((key, task));
            while (_map.Count > Capacity)
            {
                var last = _order.Last!;
                _order.RemoveLast();
                _map.Remove(last.Value.Key);
            }
        }
        // A failed computation is not kept: the next request tries again.
        _ = task.ContinueWith(t =>
        {
            lock (_map)
                if (_map.TryGetValue(key, out var n) && ReferenceEquals(n.Value.Value, t))
                {
                    _order.Remove(n);
                    _map.Remove(key);
                }
        }, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        return (task, false);
    }
}
