using VitSharp.Backends;
using VitSharp.Checkpoints;
using VitSharp.Nn;

namespace VitSharp.Training;

/// <summary>Exponential moving average of the weights (timm's ModelEmaV2): ema ← decay·ema + (1−decay)·weights after each step.</summary>
public sealed class Ema : IDisposable
{
    private readonly ParameterSet _params;
    public ParameterSet Weights { get; }
    public float Decay { get; }

    public Ema(ParameterSet parameters, float decay)
    {
        _params = parameters;
        Decay = decay;
        Weights = new ParameterSet(parameters.Backend, parameters.Layout.Select(l => (l.Name, l.Shape)), Tensors.DType.F32);
        Weights.Load(parameters.ToHost(), "ema");
    }

    public void Update() => ((ITrainingBackend)_params.Backend).EmaUpdate(Weights.Buffer, _params.Buffer, Decay);

    public void Dispose() => Weights.Dispose();
}
