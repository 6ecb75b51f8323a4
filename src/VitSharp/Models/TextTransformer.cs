using VitSharp.Backends;
using VitSharp.Checkpoints;
using VitSharp.Nn;
using VitSharp.Tensors;

namespace VitSharp.Models;

/// <summary>How a text tower turns its tokens into one vector: CLIP takes the token at the first end-of-text id,
/// SigLIP the last token (its input is always padded to the context length).</summary>
public enum TextPooling { EndOfText, LastToken }

/// <summary>A two-tower model's text encoder: sizes, attention mask, pooling and projection.</summary>
public sealed record TextConfig
{
    public int VocabSize { get; init; } = 49408;
    /// <summary>Rows of the position table: the most tokens one text may have (CLIP 77, SigLIP 64).</summary>
    public int ContextLength { get; init; } = 77;
    public int Width { get; init; } = 512;
    public int Depth { get; init; } = 12;
    public int Heads { get; init; } = 8;
    public int MlpDim { get; init; } = 2048;
    public float LayerNormEps { get; init; } = 1e-5f;
    public Activation Activation { get; init; } = Activation.QuickGelu;
    /// <summary>CLIP's text tower is causal (token i sees tokens 0…i); SigLIP's attends over every token.</summary>
    public bool Causal { get; init; } = true;
    public TextPooling Pooling { get; init; } = TextPooling.EndOfText;
    /// <summary>The end-of-text id <see cref="TextPooling.EndOfText"/> looks for.</summary>
    public int EndOfTextId { get; init; } = 49407;
    /// <summary>Width of the embedding after the projection (CLIP's text_projection, SigLIP's head).</summary>
    public int ProjectionDim { get; init; } = 512;
    /// <summary>SigLIP's head has a bias, CLIP's text_projection none.</summary>
    public bool ProjectionBias { get; init; }

    public void Validate()
    {
        if (VocabSize <= 0 || ContextLength <= 0 || Width <= 0 || Depth < 0 || Heads <= 0 || Width % Heads != 0 || MlpDim <= 0 || ProjectionDim <= 0)
            throw new VitSharpException($"invalid text tower dimensions (vocab {VocabSize}, context {ContextLength}, width {Width}, depth {Depth}, heads {Heads}, mlp {MlpDim}, projection {ProjectionDim})");
    }

    /// <summary>The encoder blocks' options, as the image tower's <see cref="Block"/> reads them.</summary>
    internal VitConfig BlockConfig => new()
    {
        EmbedDim = Width, Depth = Depth, NumHeads = Heads, MlpDim = MlpDim, LayerNormEps = LayerNormEps, Gelu = Activation,
        QkvBias = true, ProjBias = true, ImageSize = 16, PatchSize = 16, NumClasses = 0,
    };
}

/// <summary>
/// The text tower of CLIP and SigLIP: token + position embedding, the image tower's pre-LN <see cref="Block"/>s (causal
/// attention for CLIP), a final LayerNorm, one token pooled (<see cref="TextPooling"/>) and projected. Names inside are
/// timm-like: <c>blocks.{i}.*</c> as in the ViT, <c>norm</c>, <c>head</c>; the two embedding tables stay on the host
/// (a text's rows are gathered there and uploaded: a few kilobytes). Inference only.
/// </summary>
public sealed class TextTransformer : IDisposable
{
    private readonly Block[] _blocks;
    private readonly LayerNorm _norm;
    private readonly Linear _head;
    private readonly HostArray _tokens, _positions;
    private readonly object _lock = new();
    private Workspace? _ws;

    /// <summary>A text tower on <paramref name="backend"/> with <paramref name="weights"/> in timm-like names:
    /// token_embedding (V, D), pos_embed (T, D), blocks.{i}.*, norm, head; every one used, each of the shape the
    /// config implies (else a <see cref="CheckpointException"/> naming <paramref name="source"/>).</summary>
    public TextTransformer(TextConfig config, IBackend backend, IReadOnlyDictionary<string, HostArray> weights, string source)
    {
        config.Validate();
        Config = config;
        Backend = backend;
        HostArray Table(string name, int rows)
        {
            if (!weights.TryGetValue(name, out var a)) throw new CheckpointException(source, "missing from the checkpoint", name);
            if (a.Shape.Length != 2 || a.Shape[0] != rows || a.Shape[1] != config.Width)
                throw new CheckpointException(source, $"has shape {a} but the text tower needs ({rows}, {config.Width})", name);
            return a;
        }
        _tokens = Table("token_embedding", config.VocabSize);
        _positions = Table("pos_embed", config.ContextLength);
        Parameters = new ParameterSet(backend, Layout(config));
        Parameters.Load(weights.Where(kv => kv.Key is not ("token_embedding" or "pos_embed")).ToDictionary(), source);
        var bc = config.BlockConfig;
        _blocks = Enumerable.Range(0, config.Depth).Select(i => Block.From(Parameters, $"blocks.{i}", bc, config.Causal)).ToArray();
        _norm = LayerNorm.From(Parameters, "norm", config.LayerNormEps);
        _head = Linear.From(Parameters, "head", config.ProjectionBias);
    }

    public TextConfig Config { get; }
    public IBackend Backend { get; }
    public ParameterSet Parameters { get; }

    /// <summary>The device-side parameters (the embedding tables are host-side and not listed).</summary>
    public static IEnumerable<(string, int[])> Layout(TextConfig c)
    {
        var bc = c.BlockConfig;
        for (int i = 0; i < c.Depth; i++)
            foreach (var l in Block.Layout($"blocks.{i}", bc)) yield return l;
        foreach (var l in LayerNorm.Layout("norm", c.Width)) yield return l;
        foreach (var l in Linear.Layout("head", c.Width, c.ProjectionDim, c.ProjectionBias)) yield return l;
    }

    /// <summary>
    /// The projected (not normalised) embeddings (B, ProjectionDim) of token-id rows, each at most
    /// <see cref="TextConfig.ContextLength"/> long. Shorter rows are padded to the longest with <paramref name="padId"/>:
    /// with causal attention and end-of-text pooling the padding cannot reach the pooled token. SigLIP's rows come padded
    /// to the context length by its tokenizer.
    /// </summary>
    public HostArray Embed(IReadOnlyList<int[]> ids, int padId)
    {
        var c = Config;
        if (ids.Count == 0) throw new InputException("no texts");
        int n = ids.Max(r => r.Length), d = c.Width, b = ids.Count;
        if (n == 0) throw new InputException("a text has no tokens");
        if (n > c.ContextLength) throw new InputException($"a text has {n} tokens, more than the model's context of {c.ContextLength}");
        var x = new float[(long)b * n * d];
        var pool = new int[b];
        for (int r = 0; r < b; r++)
        {
            var row = ids[r];
            for (int i = 0; i < n; i++)
            {
                int id = i < row.Length ? row[i] : padId;
                if (id < 0 || id >= c.VocabSize) throw new InputException($"token id {id} is outside the vocabulary (0…{c.VocabSize - 1})");
                var dst = x.AsSpan((int)(((long)r * n + i) * d), d);
                _tokens.Data.AsSpan(id * d, d).CopyTo(dst);
                System.Numerics.Tensors.TensorPrimitives.Add(dst, _positions.Data.AsSpan(i * d, d), dst);
            }
            // CLIP (transformers): the first position holding the end-of-text id; SigLIP: the last position.
            int eot = Array.IndexOf(row, c.EndOfTextId);
            pool[r] = c.Pooling == TextPooling.LastToken ? n - 1 : eot >= 0 ? eot : row.Length - 1;
        }
        lock (_lock)
        {
            _ws ??= new Workspace(Backend);
            _ws.Reset();
            var p = Pass.Inference(Backend, _ws);
            var stream = p.Get(b, n, d);
            Backend.CopyFromHost(x, stream);
            for (int l = 0; l < _blocks.Length; l++) stream = _blocks[l].Forward(p, stream, 0);
            var normed = _norm.Forward(p, stream);
            var host = new float[normed.Length];
            Backend.CopyToHost(normed, host);
            var pooled = new float[(long)b * d];
            for (int r = 0; r < b; r++) Array.Copy(host, ((long)r * n + pool[r]) * d, pooled, (long)r * d, d);
            var pooledT = p.Get(b, d);
            Backend.CopyFromHost(pooled, pooledT);
            var y = _head.Forward(p, pooledT);
            var o = new float[y.Length];
            Backend.CopyToHost(y, o);
            return new HostArray([b, c.ProjectionDim], o);
        }
    }

    public void Dispose()
    {
        lock (_lock) _ws?.Dispose();
        Parameters.Dispose();
    }
}
