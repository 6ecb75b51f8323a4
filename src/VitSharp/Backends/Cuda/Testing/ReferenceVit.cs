using VitSharp.Tensors;

namespace VitSharp.Backends.Cuda.Testing;

/// <summary>Shape of a timm VisionTransformer (pre-LN blocks, qkv bias, erf GELU, LayerNorm eps 1e-6).</summary>
public sealed record VitShape(int Image, int Patch, int Dim, int Depth, int Heads, int Classes, int MlpRatio = 4,
    bool ClassToken = true, bool AvgPool = false)
{
    public int Tokens => (Image / Patch) * (Image / Patch) + (ClassToken ? 1 : 0);

    public static readonly Dictionary<string, VitShape> Presets = new()
    {
        ["vit_tiny_patch16_224"] = new(224, 16, 192, 12, 3, 1000),
        ["vit_small_patch16_224"] = new(224, 16, 384, 12, 6, 1000),
        ["vit_base_patch16_224"] = new(224, 16, 768, 12, 12, 1000),
        ["vit_large_patch16_224"] = new(224, 16, 1024, 24, 16, 1000),
    };

    /// <summary>Forward FLOPs per image (matrix products and attention; 2 per multiply-add).</summary>
    public double Flops()
    {
        double t = Tokens, d = Dim, np = (Image / Patch) * (Image / Patch);
        double perBlock = 2 * t * d * (3 * d + d + 2 * MlpRatio * d) + 4 * t * t * d;
        return Depth * perBlock + 2 * np * d * 3 * Patch * Patch + 2 * d * Classes;
    }
}

/// <summary>
/// A ViT forward written only against <see cref="IBackend"/>, used by the CUDA self-test and the GPU benchmark until
/// VitSharp.Models.VisionTransformer lands; it reads timm parameter names. Activations are allocated once per batch
/// size, so the forward allocates nothing and can be captured as a CUDA graph. Residual adds ride on the projection
/// GEMMs (Linear with accumulate: x += a·Wᵀ + b).
/// </summary>
public sealed class ReferenceVit : IDisposable
{
    private readonly IBackend _be;
    private readonly Dictionary<string, Tensor> _w = new();
    private readonly VitShape _s;
    private int _batch = -1;
    private Tensor? _patches, _x, _h, _qkv, _att, _mlp, _pooled, _pooledN, _logits;

    public ReferenceVit(IBackend backend, VitShape shape, IReadOnlyDictionary<string, (float[] Data, int[] Shape)> weights)
    {
        _be = backend;
        _s = shape;
        foreach (var (name, (data, dims)) in weights)
        {
            var t = backend.Allocate(dims, backend.ComputeType);
            backend.CopyFromHost(data, t);
            _w[name] = t;
        }
    }

    /// <summary>Random weights in timm's names and shapes (normal · 0.02, LayerNorm scales near 1), seeded.</summary>
    public static Dictionary<string, (float[] Data, int[] Shape)> RandomWeights(VitShape s, int seed)
    {
        var rng = new Random(seed);
        var w = new Dictionary<string, (float[], int[])>();
        void Add(string n, float std, float mean, params int[] shape)
        {
            var a = new float[Shape.Count(shape)];
            for (int i = 0; i < a.Length; i++) a[i] = mean + std * (float)(rng.NextDouble() * 2 - 1) * 1.7320508f;
            w[n] = (a, shape);
        }
        int d = s.Dim, h = s.MlpRatio * d;
        Add("patch_embed.proj.weight", 0.02f, 0, d, 3, s.Patch, s.Patch);
        Add("patch_embed.proj.bias", 0.02f, 0, d);
        if (s.ClassToken) Add("cls_token", 0.02f, 0, 1, 1, d);
        Add("pos_embed", 0.02f, 0, 1, s.Tokens, d);
        for (int i = 0; i < s.Depth; i++)
        {
            var p = $"blocks.{i}.";
            Add(p + "norm1.weight", 0.1f, 1, d); Add(p + "norm1.bias", 0.02f, 0, d);
            Add(p + "attn.qkv.weight", 0.02f, 0, 3 * d, d); Add(p + "attn.qkv.bias", 0.02f, 0, 3 * d);
            Add(p + "attn.proj.weight", 0.02f, 0, d, d); Add(p + "attn.proj.bias", 0.02f, 0, d);
            Add(p + "norm2.weight", 0.1f, 1, d); Add(p + "norm2.bias", 0.02f, 0, d);
            Add(p + "mlp.fc1.weight", 0.02f, 0, h, d); Add(p + "mlp.fc1.bias", 0.02f, 0, h);
            Add(p + "mlp.fc2.weight", 0.02f, 0, d, h); Add(p + "mlp.fc2.bias", 0.02f, 0, d);
        }
        var fn = s.AvgPool ? "fc_norm" : "norm";
        Add(fn + ".weight", 0.1f, 1, d); Add(fn + ".bias", 0.02f, 0, d);
        Add("head.weight", 0.02f, 0, s.Classes, d); Add("head.bias", 0.02f, 0, s.Classes);
        return w;
    }

    private void Prepare(int batch)
    {
        if (batch == _batch) return;
        DisposeActivations();
        int t = _s.Tokens, d = _s.Dim, np = (_s.Image / _s.Patch) * (_s.Image / _s.Patch);
        var ct = _be.ComputeType;
        _patches = _be.Allocate([batch, np, d], ct);
        _x = _be.Allocate([batch, t, d], ct);
        _h = _be.Allocate([batch, t, d], ct);
        _qkv = _be.Allocate([batch, t, 3 * d], ct);
        _att = _be.Allocate([batch, t, d], ct);
        _mlp = _be.Allocate([batch, t, _s.MlpRatio * d], ct);
        _pooled = _be.Allocate([batch, d], ct);
        _pooledN = _be.Allocate([batch, d], ct);
        _logits = _be.Allocate([batch, _s.Classes], ct);
        _batch = batch;
    }

    /// <summary>Queues the forward of <paramref name="images"/> (B, 3, H, W) and returns the logits tensor (B, classes),
    /// owned by this object and overwritten by the next call. <paramref name="mark"/>, when given, is called after each
    /// step with the step's name (for profiling with device events).</summary>
    public Tensor Forward(Tensor images, Action<string>? mark = null)
    {
        int batch = images.Dim(0);
        Prepare(batch);
        var be = _be;
        int hd = _s.Dim / _s.Heads;
        be.PatchEmbed(images, _w["patch_embed.proj.weight"], _w["patch_embed.proj.bias"], _patches!, _s.Patch);
        be.Embed(_patches!, _s.ClassToken ? _w["cls_token"] : null, _w["pos_embed"], _x!);
        mark?.Invoke("patch_embed");
        for (int i = 0; i < _s.Depth; i++)
        {
            var p = $"blocks.{i}.";
            be.LayerNorm(_x!, _w[p + "norm1.weight"], _w[p + "norm1.bias"], 1e-6f, _h!);
            mark?.Invoke("layernorm");
            be.Linear(_h!, _w[p + "attn.qkv.weight"], _w[p + "attn.qkv.bias"], _qkv!);
            mark?.Invoke("qkv");
            be.Attention(_qkv!, _att!, _s.Heads, 1f / MathF.Sqrt(hd));
            mark?.Invoke("attention");
            be.Linear(_att!, _w[p + "attn.proj.weight"], _w[p + "attn.proj.bias"], _x!, accumulate: true);
            mark?.Invoke("proj+residual");
            be.LayerNorm(_x!, _w[p + "norm2.weight"], _w[p + "norm2.bias"], 1e-6f, _h!);
            mark?.Invoke("layernorm");
            be.Linear(_h!, _w[p + "mlp.fc1.weight"], _w[p + "mlp.fc1.bias"], _mlp!, Activation.Gelu);
            mark?.Invoke("fc1+gelu");
            be.Linear(_mlp!, _w[p + "mlp.fc2.weight"], _w[p + "mlp.fc2.bias"], _x!, accumulate: true);
            mark?.Invoke("fc2+residual");
        }
        // LayerNorm is per token, so the final norm may run on the pooled token alone (token pooling).
        if (_s.AvgPool) be.MeanTokens(_x!, _s.ClassToken ? 1 : 0, _pooled!);
        else be.SelectToken(_x!, 0, _pooled!);
        var fn = _s.AvgPool ? "fc_norm" : "norm";
        be.LayerNorm(_pooled!, _w[fn + ".weight"], _w[fn + ".bias"], 1e-6f, _pooledN!);
        be.Linear(_pooledN!, _w["head.weight"], _w["head.bias"], _logits!);
        mark?.Invoke("head");
        return _logits!;
    }

    private void DisposeActivations()
    {
        foreach (var t in new[] { _patches, _x, _h, _qkv, _att, _mlp, _pooled, _pooledN, _logits }) t?.Dispose();
    }

    public void Dispose()
    {
        DisposeActivations();
        foreach (var t in _w.Values) t.Dispose();
        _w.Clear();
    }
}
