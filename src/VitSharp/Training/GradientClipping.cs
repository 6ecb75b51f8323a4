using VitSharp.Backends;
using VitSharp.Tensors;

namespace VitSharp.Training;

/// <summary>Global-norm clipping over the whole flat gradient buffer (torch.nn.utils.clip_grad_norm_).</summary>
public static class GradientClipping
{
    /// <summary>Scales <paramref name="grads"/> so its L2 norm is at most <paramref name="maxNorm"/>; returns the norm before.
    /// The backend's <see cref="ITrainingBackend.ClipGradNorm"/> does the work (what the trainer calls, keeping the norm on
    /// the device); this reads the norm back at once.</summary>
    public static float ClipGlobalNorm(ITrainingBackend be, Tensor grads, float maxNorm)
    {
        using var stats = be.Allocate([4], DType.F32);
        be.Zero(stats);
        be.ClipGradNorm(grads, maxNorm, stats);
        var host = new float[4];
        be.CopyToHost(stats, host);
        return host[2];
    }
}
