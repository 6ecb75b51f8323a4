using VitSharp.Backends;
using VitSharp.Tensors;

namespace VitSharp.Nn;

/// <summary>
/// How one forward (and, in training, its backward) runs: the backend every layer calls, where activations come from,
/// and the mode. The model's forward is written once; the pass decides what differs:
/// <list type="bullet">
/// <item><b>Inference</b>: no saved activations; each residual branch's intermediates go back to the workspace when the
/// branch ends (<see cref="Scope"/>), the branch's last Linear adds into the residual stream in place; attention
/// probabilities are captured on request; outputs (<see cref="Output"/>) belong to the caller.</item>
/// <item><b>Training</b>: every layer keeps what its backward reads (in its own fields, set by its forward); dropout and
/// drop-path masks are drawn on the host from <see cref="Rng"/> in forward order; parameter gradients accumulate into
/// <see cref="Grad"/>, a parameter set of the model's layout. Scopes release only during the backward.</item>
/// <item><b>Recording</b> (ONNX export): inference on a graph-building backend; tensors are symbolic.</item>
/// </list>
/// A model runs one training pass at a time: its layers hold that pass's saved activations until its backward.
/// </summary>
public sealed class Pass
{
    private readonly ITrainingBackend? _training;
    private readonly ParameterSet? _params, _grads;
    private readonly List<Tensor>? _probs;
    private bool _keep;

    private Pass(IBackend be, Workspace ws, ITrainingBackend? training, ParameterSet? parameters, ParameterSet? grads, List<Tensor>? probs)
    {
        Be = be;
        Ws = ws;
        _training = training;
        _params = parameters;
        _grads = grads;
        _probs = probs;
        _keep = training is not null;
    }

    /// <summary>An inference pass; with <paramref name="captureAttention"/>, every attention layer's probabilities are
    /// allocated for the caller and listed in <see cref="AttentionProbs"/>.</summary>
    public static Pass Inference(IBackend be, Workspace ws, bool captureAttention = false) =>
        new(be, ws, null, null, null, captureAttention ? new List<Tensor>() : null);

    /// <summary>A training pass: gradients of <paramref name="parameters"/> accumulate into <paramref name="grads"/> (same layout).
    /// <paramref name="rng"/> draws the dropout and drop-path masks (null: none, as in evaluation);
    /// <paramref name="separateHeads"/>: see <see cref="SeparateHeads"/>.</summary>
    public static Pass Train(ITrainingBackend be, Workspace ws, ParameterSet parameters, ParameterSet grads, Random? rng,
        float dropRate = 0, float dropPathRate = 0, bool separateHeads = false) =>
        new(be, ws, be, parameters, grads, null) { Rng = rng, DropRate = dropRate, DropPathRate = dropPathRate, SeparateHeads = separateHeads };

    /// <summary>A training pass being recorded for replay (<see cref="IGraphCapture"/>): drop-path masks come from
    /// <paramref name="masks"/>, drawn before each replay; dropout is not supported.</summary>
    public static Pass TrainRecorded(ITrainingBackend be, Workspace ws, ParameterSet parameters, ParameterSet grads, MaskPlan masks,
        float dropPathRate, bool separateHeads = false) =>
        new(be, ws, be, parameters, grads, null) { Masks = masks, DropPathRate = dropPathRate, SeparateHeads = separateHeads };

    public IBackend Be { get; }
    public Workspace Ws { get; }
    public bool Training => _training is not null;

    /// <summary>The backward operations; only a training pass has them.</summary>
    public ITrainingBackend Tb => _training ?? throw new InvalidOperationException("backward ops outside a training pass");

    /// <summary>timm's <c>distilled_training</c>: a model with a distillation head returns both heads' logits from a training
    /// forward (<see cref="Models.ModelOutput.Logits"/> the class head's, <see cref="Models.ModelOutput.DistLogits"/> the
    /// distillation head's) instead of their mean, and its backward takes a gradient for each. Distillation from a teacher
    /// turns it on; otherwise (and always at inference) the logits are the mean of the two heads.</summary>
    public bool SeparateHeads { get; private init; }

    public Random? Rng { get; private init; }
    /// <summary>Where a recorded pass's drop-path masks live (null: drawn now from <see cref="Rng"/>).</summary>
    public MaskPlan? Masks { get; private init; }
    /// <summary>Dropout on the embedding, each MLP's hidden activations and each residual branch (timm's drop_rate).</summary>
    public float DropRate { get; private init; }
    /// <summary>Stochastic depth at the last block; it grows linearly from 0 at the first (timm).</summary>
    public float DropPathRate { get; private init; }

    public float DropPathAt(int block, int depth) => DropPathAt(DropPathRate, block, depth);

    public static float DropPathAt(float rate, int block, int depth) => depth <= 1 ? rate : rate * block / (depth - 1);

    /// <summary>An activation in the compute type, from the workspace.</summary>
    public Tensor Get(params int[] shape) => Ws.Get(shape);

    /// <summary>An activation of an explicit dtype (saved statistics and probabilities are F32 whatever the compute type).</summary>
    public Tensor Get(DType dtype, params int[] shape) => Ws.Get(dtype, shape);

    /// <summary>A model output: the caller's to dispose in inference; the workspace's (valid until the next pass) otherwise.</summary>
    public Tensor Output(params int[] shape) => Training ? Ws.Get(shape) : Be.Allocate(shape, Be.ComputeType);

    /// <summary>Where an attention layer writes its probabilities (B, H, N, N): saved in training (in the compute type, as
    /// AMP keeps them: the backward's matrix products read them as bf16 operands), captured for the caller when asked,
    /// else nowhere.</summary>
    public Tensor? AttentionProbs(int batch, int heads, int tokens)
    {
        if (Training) return Get(batch, heads, tokens, tokens);
        if (_probs is null) return null;
        var p = Be.Allocate([batch, heads, tokens, tokens], Be.ComputeType);
        _probs.Add(p);
        return p;
    }

    /// <summary>The probabilities captured so far (inference with captureAttention).</summary>
    public IReadOnlyList<Tensor> CapturedProbs => _probs ?? (IReadOnlyList<Tensor>)[];

    /// <summary>The gradient of a parameter (a view of the model's parameter set): the view of the same name in the gradients.</summary>
    public Tensor Grad(Tensor parameter) =>
        (_grads ?? throw new InvalidOperationException("gradients outside a training pass"))[_params!.NameOf(parameter)];

    /// <summary>
    /// An inverted-dropout mask (keep/(1−p) or 0 per element) times a per-sample drop-path factor (keep/(1−p) or 0), or
    /// null when neither is active or outside training. Drawn on the host from <see cref="Rng"/>: per sample, the drop-path
    /// draw, then one draw per element, so a seed fixes every mask.
    /// </summary>
    public Tensor? Mask(int[] shape, float dropRate, float dropPath)
    {
        if (!Training || (dropRate <= 0 && dropPath <= 0)) return null;
        int batch = shape[0];
        if (Masks is { } plan)
        {
            if (dropRate > 0) throw new NotSupportedException("a recorded training step supports drop path, not dropout");
            return plan.Site(batch, dropPath);
        }
        if (Rng is not { } rng) return null;
        if (dropRate <= 0)
        {
            // Drop path alone: one F32 factor per sample (the same draws, so the same numbers), applied as a row scale by
            // ApplyMask — no full-size mask is drawn on the host or uploaded.
            var rows = new float[batch];
            for (int b = 0; b < batch; b++) rows[b] = DropPathFactor(rng, dropPath);
            var r = Get(DType.F32, batch);
            Be.CopyFromHost(rows, r);
            return r;
        }
        long per = Shape.Count(shape) / batch;
        var host = new float[batch * per];
        float keepScale = dropRate > 0 ? 1f / (1 - dropRate) : 1f;
        for (int b = 0; b < batch; b++)
        {
            float sample = dropPath > 0 ? DropPathFactor(rng, dropPath) : 1f;
            for (long i = 0; i < per; i++)
            {
                float e = dropRate > 0 ? (rng.NextDouble() < dropRate ? 0f : keepScale) : 1f;
                host[b * per + i] = sample * e;
            }
        }
        var t = Get(shape);
        Be.CopyFromHost(host, t);
        return t;
    }

    /// <summary>One sample's drop-path factor: one draw, 0 (dropped) with probability <paramref name="rate"/>, else
    /// 1/(1−rate). Eager masks and a recorded step's <see cref="MaskPlan"/> both draw through it.</summary>
    internal static float DropPathFactor(Random rng, float rate) => rng.NextDouble() < rate ? 0f : 1f / (1 - rate);

    /// <summary>y = x ⊙ mask: elementwise, or per sample for a drop-path row mask (see <see cref="Mask"/>).</summary>
    public void ApplyMask(Tensor x, Tensor mask, Tensor y)
    {
        if (mask.Rank == 1 && x.Rank > 1 && mask.Length == x.Dim(0)) Tb.MultiplyRows(x, mask, y);
        else Tb.Multiply(x, mask, y);
    }

    /// <summary>Switches a training pass to its backward: from now on scopes hand their scratch back.</summary>
    public void BeginBackward() => _keep = false;

    /// <summary>
    /// Tensors got inside the scope go back to the workspace at its end, unless this is a training forward (whose
    /// activations the backward reads). Use: <c>using (p.Scope()) { … }</c> around a residual branch or a block's backward.
    /// </summary>
    public ScopeHandle Scope() => new(_keep ? null : Ws, Ws.Mark);

    /// <summary>Releases the workspace memory taken since the scope began (a no-op when the pass keeps its activations).</summary>
    public readonly struct ScopeHandle(Workspace? ws, int mark) : IDisposable
    {
        public void Dispose() => ws?.Release(mark);
    }
}
