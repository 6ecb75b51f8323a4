using VitSharp.Tensors;

namespace VitSharp.Backends;

/// <summary>
/// Calibration for FP8 (<see cref="IFp8Linear"/>): passes every op through to the inner backend and, for each
/// <see cref="IBackend.Linear"/> against one of the named weights, records the largest |x| of its input (read back to the
/// host: calibration runs a few batches, not a service). <c>VisionModel.CalibrateInputs</c> runs the model's own
/// forward on it.
/// </summary>
internal sealed class AbsMaxRecorder(IBackend inner, IReadOnlyDictionary<nint, string> weights) : ForwardingBackend(inner)
{
    private readonly Dictionary<string, float> _absMax = new(StringComparer.Ordinal);

    /// <summary>The largest |input| seen per weight name (weights never multiplied are absent).</summary>
    public IReadOnlyDictionary<string, float> AbsMax => _absMax;

    public override void Linear(Tensor x, Tensor w, Tensor? bias, Tensor y, Activation act = Activation.None, bool accumulate = false)
    {
        if (weights.TryGetValue(w.Pointer, out var name))
        {
            var host = new float[x.Length];
            Inner.CopyToHost(x, host);
            float m = _absMax.GetValueOrDefault(name);
            foreach (var v in host) m = MathF.Max(m, MathF.Abs(v));
            _absMax[name] = m;
        }
        Inner.Linear(x, w, bias, y, act, accumulate);
    }
}
