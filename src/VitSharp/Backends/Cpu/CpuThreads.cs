using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;

namespace VitSharp.Backends.Cpu;

/// <summary>
/// The persistent worker pool every CPU kernel uses. Parallel.For costs tens of microseconds per call, which is as long
/// as a small ViT op; here the caller works too, idle workers spin briefly (to catch the next op of a forward pass)
/// and then sleep. A parallel region started from inside another one, or while another thread holds the pool, runs
/// serially on its caller, so kernels may nest (attention calls the GEMM) and tests may run concurrently.
/// </summary>
public static class CpuThreads
{
    private static int _count = Math.Max(1, Environment.ProcessorCount);

    /// <summary>Threads a parallel region uses, the caller included (default: the processor count).</summary>
    public static int Count
    {
        get => _count;
        set => _count = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(value), "at least one thread");
    }

    // How long (SpinWait iterations) an idle worker spins before it sleeps on the monitor: about 50 µs.
    private const int SpinIterations = 2000;

    private static readonly object Dispatch = new();   // held by the one caller whose region is running
    private static readonly object Gate = new();       // workers sleep on it
    private static readonly List<Thread> Workers = new();
    private static Job? _job;
    private static int _generation;
    [ThreadStatic] private static bool _inside;

    /// <summary>Runs body(i) for i in [0, count) on up to <see cref="Count"/> threads; returns when all are done.
    /// An exception from a body is rethrown here (the first one, when several fail).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void For(int count, Action<int> body)
    {
        int threads = Math.Min(_count, count);
        if (threads <= 1 || _inside || !Monitor.TryEnter(Dispatch))
        {
            for (int i = 0; i < count; i++) body(i);
            return;
        }
        try
        {
            EnsureWorkers(threads - 1);
            var job = new Job(body, count, threads - 1);
            Volatile.Write(ref _job, job);
            lock (Gate)
            {
                _generation++;
                Monitor.PulseAll(Gate);
            }
            _inside = true;
            try { job.Work(); }
            finally { _inside = false; }
            var spin = new SpinWait();
            while (Volatile.Read(ref job.Done) < count) spin.SpinOnce(sleep1Threshold: -1);
            if (job.Error is not null) ExceptionDispatchInfo.Capture(job.Error).Throw();
        }
        finally { Monitor.Exit(Dispatch); }
    }

    /// <summary>Runs body(start, end) over [0, count) split into chunks of at least <paramref name="grain"/> items,
    /// a few chunks per thread so uneven work still balances.</summary>
    public static void ForRange(int count, int grain, Action<int, int> body)
    {
        if (count <= 0) return;
        int chunks = Math.Min(Math.Max(1, count / Math.Max(1, grain)), 4 * _count);
        if (chunks <= 1) { body(0, count); return; }
        For(chunks, c => body((int)((long)count * c / chunks), (int)((long)count * (c + 1) / chunks)));
    }

    private static void EnsureWorkers(int n)
    {
        while (Workers.Count < n)
        {
            int index = Workers.Count;
            var t = new Thread(() => WorkerLoop(index)) { IsBackground = true, Name = $"VitSharp CPU worker {index}" };
            Workers.Add(t);
            t.Start();
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void WorkerLoop(int index)
    {
        _inside = true;
        int seen = Volatile.Read(ref _generation);
        while (true)
        {
            int spins = 0;
            while (Volatile.Read(ref _generation) == seen)
            {
                if (spins++ < SpinIterations) Thread.SpinWait(20);
                else lock (Gate) { while (_generation == seen) Monitor.Wait(Gate); }
            }
            seen = Volatile.Read(ref _generation);
            // A newer job may already be published; Work only takes indices that are left, so running it twice is harmless.
            var job = Volatile.Read(ref _job);
            if (job is not null && index < job.Workers) job.Work();
        }
    }

    private sealed class Job(Action<int> body, int count, int workers)
    {
        public readonly int Workers = workers;
        public int Done;
        public Exception? Error;
        private int _next;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Work()
        {
            while (true)
            {
                int i = Interlocked.Increment(ref _next) - 1;
                if (i >= count) return;
                try { body(i); }
                catch (Exception e) { Error ??= e; }
                Interlocked.Increment(ref Done);
            }
        }
    }
}
