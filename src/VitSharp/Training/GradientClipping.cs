using VitSharp.Backends;
using VitSharp.Tensors;

namespace VitSharp.Training;

/// <summary>Global-norm clipping over the whole flat gradient buffer (torch.nn.utils.clip_grad_norm_).</summary>
public static class GradientClipping
{
    /// <summary>Scales <paramref name="grads"/> so its L2 norm is at most <paramref name="maxNorm"/>; returns the norm before.</summary>
    public static float ClipGlobalNorm(ITrainingBackend be, Tensor grads, float maxNorm)
    {
        float norm = (float)Math.Sqrt(be.SumSquares(grads));
        if (maxNorm > 0 && norm > maxNorm) be.Scale(grads, maxNorm / (norm + 1e-6f));
        return norm;
    }
}
