using VitSharp.Backends;
using VitSharp.Checkpoints;
using VitSharp.Nn;
using VitSharp.Tensors;

namespace VitSharp.Training;

/// <summary>
/// An optimizer over the flat parameter buffer. Parameters are grouped into contiguous runs that share a weight decay
/// (timm's rule when <c>excludeFromDecay</c> is set: no decay for 1-D tensors — biases, norm scales — nor for
/// pos_embed and cls_token), so one sweep per run updates everything. State buffers share the parameters' layout.
/// </summary>
public abstract class Optimizer : IDisposable
{
    /// <summary>The weights the optimizer steps: <see cref="Master"/> when there is one, else the model's own.</summary>
    protected readonly ParameterSet Params, Grads;
    protected readonly ITrainingBackend Be;
    protected readonly List<(long Offset, int Length, bool Decay)> Runs = new();
    private readonly ParameterSet _model;

    protected Optimizer(ParameterSet parameters, ParameterSet grads, bool excludeFromDecay)
    {
        _model = parameters;
        Grads = grads;
        Be = (ITrainingBackend)parameters.Backend;
        // Mixed precision: a model computing in bf16 is stepped through fp32 master weights, copied (rounded) into the
        // model after every step, as AMP keeps fp32 parameters beside its bf16 casts.
        if (parameters.Buffer.DType != DType.F32)
        {
            Master = new ParameterSet(parameters.Backend, parameters.Layout.Select(l => (l.Name, l.Shape)), DType.F32);
            Master.Load(parameters.ToHost(), "master weights");
        }
        Params = Master ?? parameters;
        foreach (var (name, shape, offset) in parameters.Layout)
        {
            bool decay = !excludeFromDecay || !NoDecay(name, shape);
            int len = checked((int)Shape.Count(shape));
            if (Runs.Count > 0 && Runs[^1].Decay == decay && Runs[^1].Offset + Runs[^1].Length == offset)
                Runs[^1] = (Runs[^1].Offset, Runs[^1].Length + len, decay);
            else Runs.Add((offset, len, decay));
        }
    }

    /// <summary>timm's no-weight-decay set: every tensor of rank ≤ 1 plus the model's no_weight_decay() names.</summary>
    public static bool NoDecay(string name, int[] shape) =>
        shape.Length <= 1 || name is "pos_embed" or "cls_token" or "dist_token";

    /// <summary>fp32 master weights when the model computes in a lower precision (null otherwise): what checkpoints hold.</summary>
    public ParameterSet? Master { get; }

    /// <summary>The full-precision weights: the master copy, or the model's parameters themselves.</summary>
    public ParameterSet Weights => Master ?? _model;

    /// <summary>Sets the full-precision weights (and the model's copy) from host arrays: initialisation and resume.</summary>
    public void LoadWeights(IReadOnlyDictionary<string, HostArray> weights, string source)
    {
        Master?.Load(weights, source);
        _model.Load(weights, source);
    }

    /// <summary>Data parallelism: every rank takes rank 0's full-precision weights (and the model's copy follows), as
    /// PyTorch DDP broadcasts the module's parameters when it wraps it.</summary>
    public void BroadcastWeights(Distributed.ICommunicator comm)
    {
        comm.Broadcast(Be, Weights.Buffer, 0);
        SyncModel();
    }

    /// <summary>After a step on the master weights: the model's compute copy follows.</summary>
    protected void SyncModel()
    {
        if (Master is not null) Be.Copy(Master.Buffer, _model.Buffer);
    }

    protected static ParameterSet StateLike(ParameterSet p) => new(p.Backend, p.Layout.Select(l => (l.Name, l.Shape)), DType.F32);

    /// <summary>Steps taken so far (the next step is Step + 1).</summary>
    public long Step { get; protected set; }

    public abstract void Update(float lr);

    /// <summary>Named state tensors for a checkpoint ("&lt;kind&gt;.&lt;param&gt;").</summary>
    public abstract Dictionary<string, HostArray> State();

    public abstract void LoadState(IReadOnlyDictionary<string, HostArray> state, long step, string source);

    protected static Tensor Slice(ParameterSet p, long offset, int length) => p.Buffer.View([length], offset);

    protected static void AddState(Dictionary<string, HostArray> into, string kind, ParameterSet s)
    {
        foreach (var (name, a) in s.ToHost()) into[$"{kind}.{name}"] = a;
    }

    protected static void LoadInto(ParameterSet s, string kind, IReadOnlyDictionary<string, HostArray> state, string source) =>
        s.Load(s.Names.ToDictionary(n => n, n => state.TryGetValue($"{kind}.{n}", out var a) ? a
            : throw new CheckpointException(source, "optimizer state is missing", $"{kind}.{n}")), source);

    public abstract void Dispose();
}

/// <summary>AdamW (decoupled weight decay), with fp32 moments.</summary>
public sealed class AdamW : Optimizer
{
    private readonly ParameterSet _m, _v;
    public float Beta1 { get; init; } = 0.9f;
    public float Beta2 { get; init; } = 0.999f;
    public float Eps { get; init; } = 1e-8f;
    public float WeightDecay { get; init; } = 0.05f;

    public AdamW(ParameterSet parameters, ParameterSet grads, bool excludeFromDecay = true) : base(parameters, grads, excludeFromDecay)
    {
        _m = StateLike(parameters);
        _v = StateLike(parameters);
    }

    public override void Update(float lr)
    {
        Step++;
        Be.AdamWStepRuns(Params.Buffer, Grads.Buffer, _m.Buffer, _v.Buffer, Runs, new AdamWArgs(lr, Beta1, Beta2, Eps, WeightDecay, Step));
        SyncModel();
    }

    public override Dictionary<string, HostArray> State()
    {
        var d = new Dictionary<string, HostArray>();
        AddState(d, "adamw.exp_avg", _m);
        AddState(d, "adamw.exp_avg_sq", _v);
        return d;
    }

    public override void LoadState(IReadOnlyDictionary<string, HostArray> state, long step, string source)
    {
        LoadInto(_m, "adamw.exp_avg", state, source);
        LoadInto(_v, "adamw.exp_avg_sq", state, source);
        Step = step;
    }

    public override void Dispose() { _m.Dispose(); _v.Dispose(); Master?.Dispose(); }
}

/// <summary>SGD with momentum, PyTorch's arithmetic (the ViT paper's fine-tuning recipe: momentum 0.9, no weight decay).</summary>
public sealed class Sgd : Optimizer
{
    private readonly ParameterSet _buf;
    public float Momentum { get; init; } = 0.9f;
    public float WeightDecay { get; init; }
    public bool Nesterov { get; init; }

    public Sgd(ParameterSet parameters, ParameterSet grads, bool excludeFromDecay = true) : base(parameters, grads, excludeFromDecay) =>
        _buf = StateLike(parameters);

    public override void Update(float lr)
    {
        Step++;
        foreach (var (off, len, decay) in Runs)
            Be.SgdStep(Slice(Params, off, len), Slice(Grads, off, len), Slice(_buf, off, len),
                new SgdArgs(lr, Momentum, decay ? WeightDecay : 0f, Nesterov, FirstStep: Step == 1));
        SyncModel();
    }

    public override Dictionary<string, HostArray> State()
    {
        var d = new Dictionary<string, HostArray>();
        AddState(d, "sgd.momentum_buffer", _buf);
        return d;
    }

    public override void LoadState(IReadOnlyDictionary<string, HostArray> state, long step, string source)
    {
        LoadInto(_buf, "sgd.momentum_buffer", state, source);
        Step = step;
    }

    public override void Dispose() { _buf.Dispose(); Master?.Dispose(); }
}
