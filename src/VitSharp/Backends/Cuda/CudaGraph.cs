using VitSharp.Backends.Cuda.Native;

namespace VitSharp.Backends.Cuda;

/// <summary>
/// A captured sequence of stream work (cuStreamBeginCapture … cuGraphInstantiate), replayed with one launch.
/// Device blocks released while capturing stay reserved until the graph is disposed: the graph still uses them.
/// </summary>
public sealed unsafe class CudaGraph : ICapturedWork
{
    private readonly CudaContext _ctx;
    private nint _graph, _exec;
    private readonly List<(nint, long)> _held;

    private CudaGraph(CudaContext ctx, nint graph, nint exec, List<(nint, long)> held)
    {
        _ctx = ctx; _graph = graph; _exec = exec; _held = held;
    }

    internal static CudaGraph Capture(CudaContext ctx, Action body)
    {
        ctx.Allocator.BeginGraphHold();
        const int relaxed = 2; // CU_STREAM_CAPTURE_MODE_RELAXED: allows cuMemAlloc from the caching allocator meanwhile
        Driver.Check(Driver.cuStreamBeginCapture(ctx.Stream, relaxed), "cuStreamBeginCapture");
        nint graph = 0;
        try { body(); }
        finally
        {
            int rc = Driver.cuStreamEndCapture(ctx.Stream, &graph);
            if (rc != 0) { ctx.Allocator.ReturnHeld(ctx.Allocator.EndGraphHold()); }
            Driver.Check(rc, "cuStreamEndCapture");
        }
        var held = ctx.Allocator.EndGraphHold();
        nint exec;
        Driver.Check(Driver.cuGraphInstantiateWithFlags(&exec, graph, 0), "cuGraphInstantiateWithFlags");
        return new CudaGraph(ctx, graph, exec, held);
    }

    public void Launch() => Driver.Check(Driver.cuGraphLaunch(_exec, _ctx.Stream), "cuGraphLaunch");

    public void Dispose()
    {
        if (_exec == 0) return;
        _ctx.Synchronize();
        Driver.cuGraphExecDestroy(_exec);
        Driver.cuGraphDestroy(_graph);
        _exec = _graph = 0;
        _ctx.Allocator.ReturnHeld(_held);
    }
}
