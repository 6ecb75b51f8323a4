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

    /// <summary>timm's <c>distilled_training</c> (<see cref="Pass.SeparateHeads"/>): a distillation-token model's training
    /// forward returns the class head's logits from <see cref="Forward"/> and the distillation head's in
    /// <see cref="DistLogits"/>, and <see cref="Backward(Tensor, Tensor?)"/> takes both gradients. Off (the default), the
    /// logits are the mean of the two heads, as at inference. Changing it drops a recorded step.</summary>
    public bool SeparateHeads
    {
        get => _separateHeads;
        set { if (value != _separateHeads) DropRecording(); _separateHeads = value; }
    }
    private bool _separateHeads;

    /// <summary>The step's loss after the forward, in place of softmax cross-entropy against <see cref="StepIo.Targets"/>:
    /// given the training pass (its workspace serves as scratch), the micro-batch's buffers and the forward's output, it
    /// writes <see cref="StepIo.DLogits"/>, adds its statistics to <see cref="StepIo.Stats"/> and returns the distillation
    /// head's gradient (null without separate heads). Device work only, the same every step (it is recorded into a
    /// replayed step). Null: <see cref="ITrainingBackend.CrossEntropyStats"/>. See <see cref="Distillation"/>.</summary>
    public StepLoss? Loss
    {
        get => _loss;
        set { if (value != _loss) DropRecording(); _loss = value; }
    }
    private StepLoss? _loss;

    /// <summary>A step's loss (see <see cref="Loss"/>): writes dL/dlogits into <see cref="StepIo.DLogits"/> and returns
    /// dL/d(distillation logits) with separate heads, else null.</summary>
    public delegate Tensor? StepLoss(Pass pass, StepIo io, ModelOutput output);

    /// <summary>The distillation head's logits of the last forward when <see cref="SeparateHeads"/> is on, else null.</summary>
    public Tensor? DistLogits { get; private set; }

    /// <summary>Runs a forward pass that saves activations; logits (B, classes) stay valid until the next call.
    /// <paramref name="rng"/> draws dropout and drop-path masks (null: no regularisation, as in evaluation).
    /// <paramref name="images"/> must stay alive until <see cref="Backward(Tensor)"/>.</summary>
    public Tensor Forward(Tensor images, Random? rng) => ForwardOutput(images, rng).Logits!;

    private ModelOutput ForwardOutput(Tensor images, Random? rng)
    {
        Model.CheckInput(images.Shape);
        _acts.Reset();
        _pass = Pass.Train(Be, _acts, Model.Parameters, Grads, rng, Regularization.DropRate, Regularization.DropPathRate, SeparateHeads);
        Model.TrainingPass = _pass;
        var output = Model.Forward(_pass, images);
        DistLogits = output.DistLogits;
        return output;
    }

    /// <summary>Accumulates parameter gradients for the last forward, given dL/dlogits.</summary>
    public void Backward(Tensor dlogits) => Backward(dlogits, null);

    /// <summary>Accumulates parameter gradients for the last forward, given dL/dlogits and, with
    /// <see cref="SeparateHeads"/>, dL/d(distillation logits).</summary>
    public void Backward(Tensor dlogits, Tensor? dDistLogits)
    {
        var pass = _pass ?? throw new InvalidOperationException("Backward before Forward");
        if (Model.TrainingPass != pass)
            throw new InvalidOperationException("another training forward ran on this model since this one: its layers hold that pass's activations");
        pass.BeginBackward();
        Model.Backward(pass, dlogits, dDistLogits);
    }

    /// <summary>The step's loss: <see cref="Loss"/>, or cross-entropy of the logits against the targets.</summary>
    private Tensor? RunLoss(Pass pass, StepIo io, ModelOutput output)
    {
        if (_loss is not null) return _loss(pass, io, output);
        if (output.DistLogits is not null)
            throw new InvalidOperationException("separate heads need a Loss that gives the distillation head its gradient");
        Be.CrossEntropyStats(output.Logits!, io.Targets, io.Labels, io.DLogits, io.GradScale, io.Stats);
        return null;
    }

    public void ZeroGrad() => Be.Zero(Grads.Buffer);

    /// <summary>
    /// One micro-batch: forward, <see cref="ITrainingBackend.CrossEntropyStats"/> into <paramref name="io"/>'s dlogits and
    /// stats, backward, then <paramref name="epilogue"/> (the caller's device work after the backward, e.g. clipping;
    /// device operations only, the same every step). With <paramref name="replay"/> on a backend that records graphs
    /// (<see cref="IGraphCapture"/>) and no dropout, the first such step with these buffers runs eagerly (it compiles
    /// kernels and fills the allocator), the second records the whole micro-batch once, and every later one refills the
    /// drop-path masks and replays the recording with one launch: the same kernels, in the same order, on the same data,
    /// so a replayed step gives the eager step's numbers bit for bit. The inputs must stay at the same device addresses
    /// (the trainer's step buffers); new buffers or another batch size record anew.
    /// </summary>
    public void TrainStep(StepIo io, Random? rng, Action? epilogue, bool replay)
    {
        if (replay && Be is IGraphCapture capture && Regularization.DropRate <= 0)
        {
            if (_recorded is not null && !_recorded.Io.Equals(io)) DropRecording();
            if (_recorded is null && _eagerWith is not null && _eagerWith.Equals(io)) _recorded = Record(capture, io, epilogue);
            if (_recorded is not null)
            {
                _recorded.Masks.Draw(rng);
                _recorded.Work.Launch();
                return;
            }
            _eagerWith = io;
        }
        var output = ForwardOutput(io.Images, rng);
        var dDist = RunLoss(_pass!, io, output);
        Backward(io.DLogits, dDist);
        epilogue?.Invoke();
    }

    /// <summary>Whether the last <see cref="TrainStep"/> ran as a replay (for benchmarks and tests).</summary>
    public bool Replaying => _recorded is not null;

    /// <summary>The buffers of one micro-batch that <see cref="TrainStep"/> reads and writes (compared by identity).</summary>
    public sealed record StepIo(Tensor Images, Tensor Targets, Tensor? Labels, Tensor DLogits, Tensor Stats, float GradScale);

    private sealed record Recording(StepIo Io, ICapturedWork Work, Workspace Acts, MaskPlan Masks);

    private Recording? _recorded;
    private StepIo? _eagerWith;

    private Recording Record(IGraphCapture capture, StepIo io, Action? epilogue)
    {
        Model.CheckInput(io.Images.Shape);
        var acts = new Workspace(Be);
        int batch = io.Images.Dim(0);
        var masks = new MaskPlan(Be, batch * (2 * Model.Config.Depth + 8));
        var pass = Pass.TrainRecorded(Be, acts, Model.Parameters, Grads, masks, Regularization.DropPathRate, SeparateHeads);
        ICapturedWork work;
        try
        {
            work = capture.Capture(() =>
            {
                Model.TrainingPass = pass;
                var output = Model.Forward(pass, io.Images);
                var dDist = RunLoss(pass, io, output);
                pass.BeginBackward();
                Model.Backward(pass, io.DLogits, dDist);
                epilogue?.Invoke();
            });
        }
        catch
        {
            acts.Dispose();
            masks.Dispose();
            throw;
        }
        // The recording owns its activations for good; the eager pass's are not needed while it replays.
        _acts.Trim();
        _pass = null;
        return new Recording(io, work, acts, masks);
    }

    private void DropRecording()
    {
        if (_recorded is null) return;
        _recorded.Work.Dispose(); // waits for the device, then releases what the graph held
        _recorded.Acts.Dispose();
        _recorded.Masks.Dispose();
        _recorded = null;
        _eagerWith = null;
    }

    public void Dispose()
    {
        DropRecording();
        _acts.Dispose();
        Grads.Dispose();
    }
}
