using VitSharp.Backends;
using VitSharp.Models;
using VitSharp.Nn;
using VitSharp.Tensors;

namespace VitSharp.Training;

/// <summary>Dropout and stochastic depth (drop path) rates, applied only in training mode, placed as in timm.</summary>
public sealed record Regularization(float DropRate = 0f, float DropPathRate = 0f)
{
    /// <summary>timm: drop-path rate grows linearly from 0 at the first block to the full rate at the last.</summary>
    public float DropPathAt(int block, int depth) => Pass.DropPathAt(DropPathRate, block, depth);
}

/// <summary>
/// A model in training mode: runs the model's own forward as a training <see cref="Pass"/> (its layers save what their
/// backward reads, masks are drawn from the given RNG) and then the model's backward, which accumulates into
/// <see cref="Grads"/>, a parameter set with exactly the model's layout and names. Gradients are always F32 (mixed
/// precision keeps fp32 gradients); activations are in the backend's compute type.
/// </summary>
public sealed class TrainableModel : IDisposable
{
    private readonly Workspace _acts;
    private Pass? _pass;

    public TrainableModel(VisionModel model)
    {
        Model = model;
        Be = model.Backend as ITrainingBackend
            ?? throw new VitSharpException($"the {model.Backend.Device} backend does not implement training");
        if (model.Config.NumClasses <= 0) throw new VitSharpException("training needs a model with a classification head (num_classes > 0)");
        Grads = new ParameterSet(model.Backend, model.Parameters.Layout.Select(l => (l.Name, l.Shape)), DType.F32);
        _acts = new Workspace(model.Backend);
    }

    public static TrainableModel Create(VisionModel model) => new(model);

    public VisionModel Model { get; }
    public ParameterSet Parameters => Model.Parameters;
    public ParameterSet Grads { get; }
    public ITrainingBackend Be { get; }
    public Regularization Regularization { get; set; } = new();

    /// <summary>Runs a forward pass that saves activations; logits (B, classes) stay valid until the next call.
    /// <paramref name="rng"/> draws dropout and drop-path masks (null: no regularisation, as in evaluation).
    /// <paramref name="images"/> must stay alive until <see cref="Backward"/>.</summary>
    public Tensor Forward(Tensor images, Random? rng)
    {
        Model.CheckInput(images.Shape);
        _acts.Reset();
        _pass = Pass.Train(Be, _acts, Model.Parameters, Grads, rng, Regularization.DropRate, Regularization.DropPathRate);
        Model.TrainingPass = _pass;
        return Model.Forward(_pass, images).Logits!;
    }

    /// <summary>Accumulates parameter gradients for the last forward, given dL/dlogits.</summary>
    public void Backward(Tensor dlogits)
    {
        var pass = _pass ?? throw new InvalidOperationException("Backward before Forward");
        if (Model.TrainingPass != pass)
            throw new InvalidOperationException("another training forward ran on this model since this one: its layers hold that pass's activations");
        pass.BeginBackward();
        Model.Backward(pass, dlogits);
    }

    public void ZeroGrad() => Be.Zero(Grads.Buffer);

    public void Dispose()
    {
        _acts.Dispose();
        Grads.Dispose();
    }
}
