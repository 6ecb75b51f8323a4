using Microsoft.Extensions.Hosting;

namespace VitSharp.Cli.Serving;

/// <summary>
/// Readiness, apart from liveness: <see cref="Ready"/> completes once the model has loaded and one warm-up batch has run
/// through the batching worker. A hosted service, so a host whose model is already loaded warms it before it listens.
/// </summary>
public sealed class ServeReadiness(Task<BatchingClassifier> model, ServeMetrics metrics) : IHostedService
{
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes when the service can answer classify/embed requests; faults with the load or warm-up error.</summary>
    public Task Ready => _ready.Task;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var warm = WarmAsync();
        // A model already loaded: warm it before the server listens, so the first request (and /readyz) finds it ready.
        if (model.IsCompleted) await warm.WaitAsync(cancellationToken);
    }

    private async Task WarmAsync()
    {
        try
        {
            var m = await model;
            m.Metrics = metrics;
            await m.WarmUpAsync();
            _ready.TrySetResult();
        }
        catch (Exception e) { _ready.TrySetException(e); }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
