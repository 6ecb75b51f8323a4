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

    /// <summary>Runs images (B, C, H, W) already on the model's device and in its compute dtype.</summary>
    public abstract ModelOutput Forward(Tensor images, bool captureAttention = false);

    public void Load(IReadOnlyDictionary<string, HostArray> weights, string source) => Parameters.Load(weights, source);

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

    public void CheckInput(int[] shape)
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
        Parameters.Dispose();
        GC.SuppressFinalize(this);
    }
}

public enum OutputKind { Logits, Pooled, Tokens }
