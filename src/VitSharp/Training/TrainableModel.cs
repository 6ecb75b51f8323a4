using VitSharp.Backends;
using VitSharp.Models;
using VitSharp.Nn;
using VitSharp.Tensors;

namespace VitSharp.Training;

/// <summary>Dropout and stochastic depth (drop path) rates, applied only in training mode, placed as in timm.</summary>
public sealed record Regularization(float DropRate = 0f, float DropPathRate = 0f)
{
    /// <summary>timm: drop-path rate grows linearly from 0 at the first block to the full rate at the last.</summary>
    public float DropPathAt(int block, int depth) => depth <= 1 ? DropPathRate : DropPathRate * block / (depth - 1);
}

/// <summary>
/// A model with a training forward (saving the activations the backward needs) and an explicit backward (llm.c style)
/// that accumulates into <see cref="Grads"/>, a parameter set with exactly the model's layout and names.
/// </summary>
public abstract class TrainableModel : IDisposable
{
    protected TrainableModel(VisionModel model)
    {
        Model = model;
        Be = model.Backend as ITrainingBackend
            ?? throw new VitSharpException($"the {model.Backend.Device} backend does not implement training");
        // Gradients are fp32 whatever the compute type (mixed precision keeps fp32 gradients, master weights and state).
        Grads = new ParameterSet(model.Backend, model.Parameters.Layout.Select(l => (l.Name, l.Shape)), DType.F32);
    }

    public VisionModel Model { get; }
    public ParameterSet Parameters => Model.Parameters;
    public ParameterSet Grads { get; }
    public ITrainingBackend Be { get; }
    public Regularization Regularization { get; set; } = new();

    /// <summary>Activations of the last training forward, released when the batch size changes.</summary>
    protected Workspace? Acts;
    protected int ActsBatch = -1;
    private readonly Dictionary<string, Tensor> _maskSlots = new();

    /// <summary>Runs a forward pass that saves activations; logits (B, classes) stay valid until the next call.
    /// <paramref name="rng"/> draws dropout and drop-path masks (null: no regularisation, as in evaluation).</summary>
    public abstract Tensor Forward(Tensor images, Random? rng);

    /// <summary>Accumulates parameter gradients for the last forward, given dL/dlogits.</summary>
    public abstract void Backward(Tensor dlogits);

    public void ZeroGrad() => Be.Zero(Grads.Buffer);

    protected Tensor Get(params int[] shape) => Acts!.Get(shape);

    protected bool EnsureActivations(int batch)
    {
        if (batch == ActsBatch) return false;
        Acts?.Dispose();
        foreach (var r in _rowMasks) r.Dispose();
        _rowMasks.Clear();
        _maskSlots.Clear();
        Acts = new Workspace(Model.Backend);
        ActsBatch = batch;
        return true;
    }

    /// <summary>An inverted-dropout mask (keep/(1−p) or 0 per element) times a per-sample drop-path factor, or null
    /// when neither is active. Drawn on the host from <paramref name="rng"/> so a seed fixes it. With drop path alone the
    /// mask is one F32 factor per sample (shape [batch]; the same draws, so the same numbers), applied by
    /// <see cref="ApplyMask"/> as a row scale: no full-size mask is drawn or uploaded.</summary>
    protected Tensor? Mask(string slot, Random? rng, int[] shape, float dropRate, float dropPath)
    {
        if (rng is null || (dropRate <= 0 && dropPath <= 0)) return null;
        int batch = shape[0];
        if (dropRate <= 0)
        {
            var rows = new float[batch];
            for (int b = 0; b < batch; b++) rows[b] = rng.NextDouble() < dropPath ? 0f : 1f / (1 - dropPath);
            if (!_maskSlots.TryGetValue(slot, out var r))
            {
                _maskSlots[slot] = r = Model.Backend.Allocate([batch], DType.F32);
                _rowMasks.Add(r);
            }
            Be.CopyFromHost(rows, r);
            return r;
        }
        long per = Shape.Count(shape) / batch;
        var host = new float[batch * per];
        float keepScale = 1f / (1 - dropRate);
        for (int b = 0; b < batch; b++)
        {
            float sample = dropPath > 0 ? (rng.NextDouble() < dropPath ? 0f : 1f / (1 - dropPath)) : 1f;
            for (long i = 0; i < per; i++)
            {
                float e = rng.NextDouble() < dropRate ? 0f : keepScale;
                host[b * per + i] = sample * e;
            }
        }
        if (!_maskSlots.TryGetValue(slot, out var t)) _maskSlots[slot] = t = Get(shape);
        Be.CopyFromHost(host, t);
        return t;
    }

    private readonly List<Tensor> _rowMasks = new();

    /// <summary>y = x ⊙ mask: elementwise, or per sample for a drop-path row mask (see <see cref="Mask"/>).</summary>
    protected void ApplyMask(Tensor x, Tensor mask, Tensor y)
    {
        if (mask.Rank == 1 && mask.DType == DType.F32 && mask.Length == x.Dim(0) && x.Rank > 1) Be.MultiplyRows(x, mask, y);
        else Be.Multiply(x, mask, y);
    }

    /// <summary>y = x ⊙ mask, or x itself without a mask.</summary>
    protected Tensor Masked(Tensor x, Tensor? mask, Tensor scratch)
    {
        if (mask is null) return x;
        ApplyMask(x, mask, scratch);
        return scratch;
    }

    /// <summary>
    /// Training forward of an Mlp branch: output = fc2(mask·act(fc1(input))), keeping hPre and hAct for the backward.
    /// Returns the dropout mask on the hidden activations (null when dropout is off); see <see cref="MlpBackward"/>.
    /// </summary>
    protected Tensor? MlpForward(string prefix, Activation act, Tensor input, Tensor hPre, Tensor hAct, Tensor output,
        string maskSlot, Random? rng, float dropRate)
    {
        var fc1 = Lin(prefix + ".fc1");
        Be.Linear(input, fc1.W, fc1.B, hPre);
        Be.Apply(act, hPre, hAct);
        var mask = Mask(maskSlot, rng, hAct.Shape, dropRate, 0);
        if (mask is not null) ApplyMask(hAct, mask, hAct);
        var fc2 = Lin(prefix + ".fc2");
        Be.Linear(hAct, fc2.W, fc2.B, output);
        return mask;
    }

    /// <summary>
    /// Backward of an Mlp branch fc2(mask·act(fc1(x))) from its output gradient: fills the fc1/fc2 gradients and writes
    /// dInput. hAct, hMask and hPre are what the forward saved; dHidden is scratch of the hidden shape.
    /// </summary>
    protected void MlpBackward(string prefix, Activation act, Tensor dOut, Tensor hAct, Tensor? hMask, Tensor hPre, Tensor input,
        Tensor dHidden, Tensor dInput)
    {
        var fc2 = Lin(prefix + ".fc2");
        Be.LinearBackward(dOut, hAct, fc2.W, dHidden, fc2.DW, fc2.DB);
        if (hMask is not null) ApplyMask(dHidden, hMask, dHidden);
        Be.ActivationBackward(act, dHidden, hPre, dHidden);
        var fc1 = Lin(prefix + ".fc1");
        Be.LinearBackward(dHidden, input, fc1.W, dInput, fc1.DW, fc1.DB);
    }

    protected (Tensor W, Tensor? B, Tensor DW, Tensor? DB) Lin(string prefix, bool bias = true) =>
        (Parameters[prefix + ".weight"], bias ? Parameters[prefix + ".bias"] : null,
         Grads[prefix + ".weight"], bias ? Grads[prefix + ".bias"] : null);

    protected (Tensor G, Tensor B, Tensor DG, Tensor DB) Norm(string prefix) =>
        (Parameters[prefix + ".weight"], Parameters[prefix + ".bias"], Grads[prefix + ".weight"], Grads[prefix + ".bias"]);

    public static TrainableModel Create(VisionModel model) => model switch
    {
        VisionTransformer v => new TrainableVit(v),
        MlpMixer m => new TrainableMixer(m),
        _ => throw new ArgumentException($"no training path for {model.GetType().Name}"),
    };

    public virtual void Dispose()
    {
        Acts?.Dispose();
        foreach (var r in _rowMasks) r.Dispose();
        Grads.Dispose();
        GC.SuppressFinalize(this);
    }
}
