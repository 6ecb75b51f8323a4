namespace VitSharp.Backends;

/// <summary>
/// A backend that can record a sequence of its operations once and replay it with one launch (CUDA graphs). Replays run
/// the same kernels on the same buffers with the same arguments as the recording: whatever changes between replays must
/// live in device buffers that the caller refills before each <see cref="ICapturedWork.Launch"/>.
/// </summary>
public interface IGraphCapture
{
    /// <summary>Records what <paramref name="body"/> enqueues, without running it.</summary>
    ICapturedWork Capture(Action body);
}

/// <summary>Recorded device work: <see cref="Launch"/> enqueues all of it at once.</summary>
public interface ICapturedWork : IDisposable
{
    void Launch();
}
