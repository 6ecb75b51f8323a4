using VitSharp.Backends;
using VitSharp.Checkpoints;
using VitSharp.Nn;
using VitSharp.Tensors;

namespace VitSharp.Models;

/// <summary>What a forward pass returns, on the model's device; the caller disposes it.</summary>
public sealed class ModelOutput : IDisposable
{
    /// <summary>Tokens after the final norm (B, T, D) — timm's forward_features.</summary>
    public required Tensor Tokens { get; init; }
    /// <summary>Pooled (and pre-logits) features (B, F).</summary>
    public required Tensor Pooled { get; init; }
    /// <summary>Class scores (B, classes), or null for a features-only model.</summary>
    public Tensor? Logits { get; init; }
    /// <summary>Attention weights per layer (B, H, T, T) when asked for.</summary>
    public IReadOnlyList<Tensor> AttentionProbs { get; init; } = [];

    public void Dispose()
    {
        Tokens.Dispose();
        Pooled.Dispose();
        Logits?.Dispose();
        foreach (var p in AttentionProbs) p.Dispose();
    }
}

/// <summary>An image model whose parameters live in one buffer on one backend.</summary>
public abstract class VisionModel : IDisposable
{
    protected VisionModel(ModelConfig config, IBackend backend, IEnumerable<(string, int[])> layout)
    {
        config.Validate();
        Config = config;
        Backend = backend;
        Parameters = new ParameterSet(backend, layout);
    }

    public ModelConfig Config { get; }
    public IBackend Backend { get; }
    public ParameterSet Parameters { get; }

    public static VisionModel Create(ModelConfig config, IBackend backend) => config switch
    {
        VitConfig v => new VisionTransformer(v, backend),
        MixerConfig m => new MlpMixer(m, backend),
        _ => throw new ArgumentException($"unknown config {config.GetType().Name}"),
    };

    /// <summary>Runs images (B, C, H, W) already on the model's device and in its compute dtype (an inference pass over
    /// the model's reused workspace; one at a time).</summary>
    public ModelOutput Forward(Tensor images, bool captureAttention = false)
    {
        CheckInput(images.Shape);
        lock (ForwardLock)
        {
            Activations.Reset();
            return Forward(Pass.Inference(Backend, Activations, captureAttention), images);
        }
    }

    /// <summary>
    /// The model, written once: inference, training (saved activations, dropout and drop-path masks), attention capture and
    /// ONNX recording are passes of this forward (see <see cref="Pass"/>). Every layer runs on <see cref="Pass.Be"/>, which
    /// need not be <see cref="Backend"/> (the ONNX recorder). Outputs are the caller's in inference, the workspace's otherwise.
    /// </summary>
    public abstract ModelOutput Forward(Pass pass, Tensor images);

    /// <summary>After a training <see cref="Forward(Pass, Tensor)"/> on the same pass: accumulates every parameter
    /// gradient into the pass's gradients, given dL/dlogits.</summary>
    public abstract void Backward(Pass pass, Tensor dlogits);

    /// <summary>The training pass whose activations the layers hold now (the layers keep one pass's saved tensors).</summary>
    internal Pass? TrainingPass { get; set; }

    public void Load(IReadOnlyDictionary<string, HostArray> weights, string source)
    {
        lock (ForwardLock)
        {
            bool prepared = _prepacked.Count > 0;
            ReleasePrepacked();
            Parameters.Load(weights, source);
            WeightsChanged();
            if (prepared) PrepareForInference();
        }
    }

    /// <summary>Called after <see cref="Load"/>: a model that caches something derived from its weights drops it.</summary>
    protected virtual void WeightsChanged() { }

    /// <summary>Held by Forward (one forward at a time per model: it reuses <see cref="Activations"/>) and by weight changes.</summary>
    protected readonly object ForwardLock = new();

    /// <summary>Intermediate activations, kept from one forward to the next (same shapes reuse the same memory).
    /// Use under <see cref="ForwardLock"/>, after <see cref="Workspace.Reset"/>.</summary>
    protected Workspace Activations => _activations ??= new Workspace(Backend);
    private Workspace? _activations;

    private readonly List<Tensor> _prepacked = new();

    /// <summary>
    /// For inference only: lets the backend keep the weight matrices pre-packed for its matrix products (CPU: skips
    /// re-packing every weight on every forward). The weights must then not change except through <see cref="Load"/>
    /// (which re-packs); do not call this on a model that is being trained. No-op on backends without the capability.
    /// </summary>
    public void PrepareForInference()
    {
        if (Backend is not IWeightPrepacking packer) return;
        lock (ForwardLock)
        {
            foreach (var (name, shape, _) in Parameters.Layout)
            {
                if (shape.Length < 2 || !name.EndsWith(".weight", StringComparison.Ordinal)) continue;
                var w = Parameters[name];
                packer.Prepack(w);
                _prepacked.Add(w);
            }
        }
    }

    public bool IsPreparedForInference => _prepacked.Count > 0;

    private void ReleasePrepacked()
    {
        if (Backend is IWeightPrepacking packer) foreach (var w in _prepacked) packer.Release(w);
        _prepacked.Clear();
    }

    /// <summary>Host convenience: NCHW floats in, the output kind asked for out (logits, pooled features or tokens).</summary>
    public HostArray Run(HostArray images, OutputKind kind = OutputKind.Logits)
    {
        CheckInput(images.Shape);
        using var x = Backend.Allocate(images.Shape, Backend.ComputeType);
        Backend.CopyFromHost(images.Data, x);
        using var output = Forward(x);
        var t = kind switch
        {
            OutputKind.Tokens => output.Tokens,
            OutputKind.Pooled => output.Pooled,
            _ => output.Logits ?? output.Pooled,
        };
        var data = new float[t.Length];
        Backend.CopyToHost(t, data);
        return new HostArray(t.Shape, data);
    }

    public virtual void CheckInput(int[] shape)
    {
        var c = Config;
        if (shape.Length != 4 || shape[1] != c.InChannels || shape[2] != c.ImageSize || shape[3] != c.ImageSize)
            throw new InputException(
                $"input has shape {Shape.Format(shape)} but the model takes (B,{c.InChannels},{c.ImageSize},{c.ImageSize}); " +
                "resize the input, or run the model at the input's size (--img-size) to resample its position embeddings");
        if (shape[0] <= 0) throw new InputException("input batch is empty");
    }

    public void Dispose()
    {
        lock (ForwardLock)
        {
            ReleasePrepacked();
            _activations?.Dispose();
            WeightsChanged();
        }
        Parameters.Dispose();
        GC.SuppressFinalize(this);
    }
}

/// <summary>What a forward pass returns: class logits (B, classes), pooled features (B, F) or all tokens (B, T, D).</summary>
public enum OutputKind { Logits, Pooled, Tokens }
