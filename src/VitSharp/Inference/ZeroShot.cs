using System.Text.Json;
using System.Text.Json.Nodes;
using VitSharp.Backends;
using VitSharp.Backends.Cpu;
using VitSharp.Checkpoints;
using VitSharp.Data;
using VitSharp.Models;
using VitSharp.Text;

namespace VitSharp.Inference;

/// <summary>How a <see cref="ZeroShotModel"/> is loaded.</summary>
public sealed record ZeroShotOptions
{
    /// <summary>CLIP's tokenizer from OpenAI's bpe_simple_vocab_16e6.txt.gz instead of the folder's vocab.json/merges.txt.</summary>
    public string? ClipBpe { get; init; }
    /// <summary>A big_vision .npz's SentencePiece model (<c>--spiece</c>); default: NAME.model, else spiece.model, beside
    /// the .npz. Not used for a Hugging Face folder (its tokenizer files are in it).</summary>
    public string? SentencePiece { get; init; }
    /// <summary>The image tower's load options (non-finite weights, budgets).</summary>
    public LoadOptions? Load { get; init; }
}

/// <summary>One label's score for one image: CLIP's softmax over the labels, SigLIP's sigmoid of each label's logit.</summary>
public sealed record ZeroShotScore(int Index, string Label, float Probability, float Logit);

/// <summary>
/// A two-tower image–text model (Hugging Face CLIPModel or SiglipModel folder: config.json, model.safetensors and the
/// tokenizer files): the image tower is VitSharp's ViT (loaded as <see cref="Classifier"/> loads it), the text tower a
/// <see cref="TextTransformer"/> sharing its blocks. Embeddings are L2-normalised; logits are
/// exp(logit_scale)·⟨image, text⟩ (+ logit_bias for SigLIP), as logits_per_image in transformers. Label embeddings
/// (per label and template set) are computed once and cached; a batch of images costs one image-tower pass.
/// Thread-safe.
/// </summary>
public sealed class ZeroShotModel : IDisposable
{
    private readonly Dictionary<(string, string), float[]> _labelCache = new();

    private ZeroShotModel(string family, Classifier image, TextTransformer text, ITextTokenizer tokenizer, float logitScale, float logitBias)
    {
        Family = family;
        Image = image;
        Text = text;
        Tokenizer = tokenizer;
        LogitScale = logitScale;
        LogitBias = logitBias;
    }

    /// <summary>"clip", "siglip" or "lit" (a big_vision/vision_transformer .npz without a bias: softmax scores).</summary>
    public string Family { get; }
    public Classifier Image { get; }
    public TextTransformer Text { get; }
    public ITextTokenizer Tokenizer { get; }
    /// <summary>The logit_scale parameter (a log): logits are exp(LogitScale)·cosine (+ <see cref="LogitBias"/>).</summary>
    public float LogitScale { get; }
    /// <summary>SigLIP's logit_bias; 0 for CLIP.</summary>
    public float LogitBias { get; }
    public bool Sigmoid => Family == "siglip";
    public int EmbeddingDim => Text.Config.ProjectionDim;

    /// <summary>Whether <paramref name="path"/> is a folder whose config.json names a two-tower model (model_type clip
    /// or siglip), what <see cref="Load"/> takes; false for anything else (a file, a ViT folder, an unreadable config).</summary>
    public static bool IsTwoTowerFolder(string path)
    {
        var config = Path.Combine(path, "config.json");
        if (!Directory.Exists(path) || !File.Exists(config)) return false;
        try { return JsonNode.Parse(File.ReadAllText(config)) is JsonObject o && o["model_type"] is JsonValue v && v.TryGetValue<string>(out var t) && t is "clip" or "siglip"; }
        catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException or InvalidOperationException or ArgumentException) { return false; }
    }

    /// <summary>A Hugging Face CLIPModel/SiglipModel folder (<see cref="IsTwoTowerFolder"/>) or a big_vision
    /// two-tower .npz (<see cref="BigVisionTwoTower.IsTwoTower"/>): what <see cref="Load"/> takes.</summary>
    public static bool IsTwoTower(string path) => IsTwoTowerFolder(path) || BigVisionTwoTower.IsTwoTower(path);

    /// <summary>Loads a Hugging Face CLIPModel or SiglipModel folder, or a big_vision two-tower .npz (SigLIP, LiT with
    /// a text_transformer text tower; docs/ZEROSHOT.md).</summary>
    public static ZeroShotModel Load(string dir, ZeroShotOptions? options = null, IBackend? backend = null)
    {
        options ??= new ZeroShotOptions();
        backend ??= CpuBackend.Instance;
        if (File.Exists(dir) && Npz.LooksLike(dir)) return LoadNpz(dir, options, backend);
        if (options.SentencePiece is not null) throw new VitSharpException("--spiece is for big_vision .npz checkpoints: a Hugging Face folder's tokenizer is its spiece.model or vocab.json/merges.txt");
        if (!Directory.Exists(dir))
            throw new CheckpointException(dir, File.Exists(dir) ? "neither a folder nor an .npz archive (expected a Hugging Face CLIPModel or SiglipModel folder, or a big_vision two-tower .npz)"
                : "not found (expected a Hugging Face CLIPModel or SiglipModel folder, or a big_vision two-tower .npz)");
        var configPath = Path.Combine(dir, "config.json");
        var weightsPath = Path.Combine(dir, "model.safetensors");
        if (!File.Exists(configPath)) throw new CheckpointException(dir, "folder has no config.json (expected a Hugging Face CLIPModel or SiglipModel folder)");
        if (!File.Exists(weightsPath)) throw new CheckpointException(dir, "folder has no model.safetensors");
        var cfg = ZeroShotJson.Parse(configPath);
        var family = ZeroShotJson.String(cfg, "model_type", configPath);
        if (family is not ("clip" or "siglip"))
            throw new CheckpointException(configPath, $"model_type '{family ?? "(none)"}' is not a two-tower model (expected clip or siglip)");
        var textCfg = cfg["text_config"] as JsonObject ?? throw new CheckpointException(configPath, $"model_type '{family}' without a 'text_config' object");

        // The text tower's tensors (the image tower's are read by Checkpoint.Load, which skips these).
        var raw = SafeTensors.Read(weightsPath, out _, (e, _) =>
            e.Name.StartsWith("text_model.", StringComparison.Ordinal) || e.Name.StartsWith("text_projection.", StringComparison.Ordinal)
            || e.Name is "logit_scale" or "logit_bias", options.Load?.MaxTotalBytes);
        raw.Remove("text_model.embeddings.position_ids");
        float Scalar(string name, float? fallback)
        {
            if (!raw.Remove(name, out var a)) return fallback ?? throw new CheckpointException(weightsPath, "missing from the checkpoint", name);
            if (a.Data.Length != 1) throw new CheckpointException(weightsPath, $"expected one value, found shape {a}", name);
            if (!float.IsFinite(a.Data[0])) throw new CheckpointException(weightsPath, $"is {a.Data[0]}", name);
            return a.Data[0];
        }
        float scale = Scalar("logit_scale", null);
        float bias = family == "siglip" ? Scalar("logit_bias", null) : 0;
        var w = TextNames(raw, family, weightsPath);
        var tokenizer = options.ClipBpe is { } gz ? ClipTokenizer.FromBpeGz(gz)
            : family == "clip" ? ClipTokenizer.FromFolder(dir) : (ITextTokenizer)SiglipTokenizer.FromFolder(dir);
        if (family == "siglip" && options.ClipBpe is not null) throw new VitSharpException("--clip-bpe is for CLIP models; this is a SigLIP model");

        var tok = Shape(w, "token_embedding", weightsPath);
        var pos = Shape(w, "pos_embed", weightsPath);
        var head = Shape(w, "head.weight", weightsPath);
        int depth = 0;
        while (w.ContainsKey($"blocks.{depth}.norm1.weight")) depth++;
        int width = tok[1];
        var heads = ZeroShotJson.Int(textCfg, "num_attention_heads", configPath) ?? (family == "clip" ? 8 : 12);
        var act = ModelConfig.ParseActivation(ZeroShotJson.String(textCfg, "hidden_act", configPath) ?? (family == "clip" ? "quick_gelu" : "gelu_pytorch_tanh"))!.Value;
        var eps = ZeroShotJson.Number(textCfg, "layer_norm_eps", configPath) ?? (family == "clip" ? 1e-5 : 1e-6);
        int eosConfig = ZeroShotJson.Int(textCfg, "eos_token_id", configPath) ?? 2;
        var tc = new TextConfig
        {
            VocabSize = tok[0], ContextLength = pos[0], Width = width, Depth = depth, Heads = heads,
            MlpDim = depth > 0 ? Shape(w, "blocks.0.mlp.fc1.weight", weightsPath)[0] : 4 * width,
            LayerNormEps = (float)eps, Activation = act,
            Causal = family == "clip",
            Pooling = family == "clip" ? TextPooling.EndOfText : TextPooling.LastToken,
            // transformers: eos_token_id 2 (old configs) means "the largest id", which is CLIP's <|endoftext|>.
            EndOfTextId = eosConfig != 2 ? eosConfig : tokenizer is ClipTokenizer ct ? ct.EosId : eosConfig,
            ProjectionDim = head[0],
            ProjectionBias = family == "siglip",
        };
        void Same(string key, int actual, string what)
        {
            if (ZeroShotJson.Int(textCfg, key, configPath) is int stated && stated != actual)
                throw new CheckpointException(configPath, $"text_config '{key}' is {stated}, but the weights have {what} {actual}");
        }
        Same("vocab_size", tc.VocabSize, "a vocabulary of");
        Same("hidden_size", tc.Width, "width");
        Same("num_hidden_layers", tc.Depth, "layers");
        Same("intermediate_size", tc.MlpDim, "MLP width");
        Same("max_position_embeddings", tc.ContextLength, "positions");
        if (tokenizer.ContextLength > tc.ContextLength)
            throw new CheckpointException(configPath, $"the tokenizer makes up to {tokenizer.ContextLength} tokens but the text tower has {tc.ContextLength} positions");
        var text = new TextTransformer(tc, backend, w, weightsPath);
        Classifier image;
        try { image = Classifier.Load(dir, options.Load, backend); }
        catch { text.Dispose(); throw; }
        if (image.Model.Config.NumClasses is int nc && (nc > 0 ? nc : image.Model.Config.EmbedDim) != tc.ProjectionDim)
        {
            image.Dispose();
            text.Dispose();
            throw new CheckpointException(weightsPath, $"image embeddings have width {(nc > 0 ? nc : image.Model.Config.EmbedDim)} but text embeddings {tc.ProjectionDim}");
        }
        return new ZeroShotModel(family, image, text, tokenizer, scale, bias);
    }

    /// <summary>
    /// A big_vision two-tower .npz: the text tower (<see cref="GoogleNames.TextToTimm"/>: every array used, heads from the
    /// query kernels, bidirectional attention, the last token pooled, flax's tanh GELU and eps 1e-6 unless
    /// <see cref="ZeroShotOptions.Load"/> says otherwise), the temperature t and SigLIP's bias b; the image tower through
    /// <see cref="Classifier.Load"/> (Google's preprocessing: a square bilinear resize, [−1, 1]). With b the model is
    /// SigLIP (sigmoid scores, texts canonicalised as SiglipTokenizer does), without it LiT (softmax, texts as they are).
    /// The tokenizer is the SentencePiece model of <see cref="ZeroShotOptions.SentencePiece"/> or beside the file.
    /// </summary>
    private static ZeroShotModel LoadNpz(string path, ZeroShotOptions options, IBackend backend)
    {
        if (options.ClipBpe is not null) throw new VitSharpException("--clip-bpe is for CLIP models; a big_vision .npz is SigLIP or LiT (a SentencePiece tokenizer: --spiece)");
        var load = options.Load ?? new LoadOptions();
        var raw = BigVisionTwoTower.ReadTower(path, "txt", load.MaxTotalBytes, out var prefix);
        Checkpoint.CheckFinite(raw, path, load);
        var (t, b) = BigVisionTwoTower.ReadScalars(path, prefix);
        var (w, heads) = GoogleNames.TextToTimm(raw, prefix + "txt/", path);
        string family = b is null ? "lit" : "siglip";
        var tok = w["token_embedding"].Shape;
        var pos = w["pos_embed"].Shape;
        var head = w["head.weight"].Shape;
        if (pos[1] != tok[1])
            throw new CheckpointException(path, $"has width {pos[1]} but the token embedding {tok[1]}", prefix + "txt/pos_embedding");
        if (head.Length != 2 || head[1] != tok[1])
            throw new CheckpointException(path, $"has shape ({string.Join(", ", head.Reverse())}) but the text tower is {tok[1]} wide", prefix + "txt/head/kernel");
        int depth = 0;
        while (w.ContainsKey($"blocks.{depth}.norm1.weight")) depth++;
        if (depth > 0 && w["blocks.0.attn.qkv.weight"].Shape[0] != 3 * tok[1])
            throw new CheckpointException(path, $"attention {w["blocks.0.attn.qkv.weight"].Shape[0] / 3} wide in a text tower {tok[1]} wide (VitSharp's text tower needs heads × head width = width)",
                prefix + "txt/Encoder_0/encoderblock_0/MultiHeadDotProductAttention_0/query/kernel");
        var spm = options.SentencePiece ?? SentencePieceBeside(path)
            ?? throw new CheckpointException(path, $"a big_vision .npz holds no tokenizer: pass --spiece PATH (ZeroShotOptions.SentencePiece), the SentencePiece model this {(family == "siglip" ? "SigLIP" : "LiT")} was trained with, or put {Path.GetFileNameWithoutExtension(path)}.model or spiece.model beside it");
        var tokenizer = SiglipTokenizer.FromModel(spm, pos[0], canonicalize: family == "siglip");
        if (tokenizer.VocabSize > tok[0])
            throw new CheckpointException(path, $"the text tower's vocabulary has {tok[0]} rows but the SentencePiece model {spm} has {tokenizer.VocabSize} pieces: not this checkpoint's tokenizer", prefix + "txt/Embed_0/embedding");
        var tc = new TextConfig
        {
            VocabSize = tok[0], ContextLength = pos[0], Width = tok[1], Depth = depth, Heads = heads,
            MlpDim = depth > 0 ? w["blocks.0.mlp.fc1.weight"].Shape[0] : 4 * tok[1],
            LayerNormEps = load.LayerNormEps ?? 1e-6f, Activation = load.Gelu ?? Backends.Activation.GeluTanh,
            Causal = false, Pooling = TextPooling.LastToken, EndOfTextId = tokenizer.EosId,
            ProjectionDim = head[0], ProjectionBias = true,
        };
        var text = new TextTransformer(tc, backend, w, path);
        Classifier image;
        try { image = Classifier.Load(path, load, backend); }
        catch { text.Dispose(); throw; }
        int imageDim = image.Model.Config.NumClasses is int nc && nc > 0 ? nc : image.Model.Config.EmbedDim;
        if (imageDim != tc.ProjectionDim)
        {
            image.Dispose();
            text.Dispose();
            throw new CheckpointException(path, $"image embeddings have width {imageDim} but text embeddings {tc.ProjectionDim}");
        }
        return new ZeroShotModel(family, image, text, tokenizer, t, b ?? 0);
    }

    /// <summary>LiT names its vocabulary after the model (LiT-L16S.npz, LiT-L16S.model); a folder may hold spiece.model.</summary>
    private static string? SentencePieceBeside(string npz)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(npz))!;
        foreach (var name in new[] { Path.GetFileNameWithoutExtension(npz) + ".model", "spiece.model" })
            if (File.Exists(Path.Combine(dir, name))) return Path.Combine(dir, name);
        return null;
    }

    private static int[] Shape(Dictionary<string, HostArray> w, string name, string file) =>
        w.TryGetValue(name, out var a) ? a.Shape : throw new CheckpointException(file, "missing from the checkpoint (text tower)", name);

    /// <summary>transformers' text-tower names → the <see cref="TextTransformer"/>'s (q/k/v fused as the ViT's qkv); a
    /// name this leaves alone is refused by the tower's strict load.</summary>
    private static Dictionary<string, HostArray> TextNames(Dictionary<string, HostArray> raw, string family, string file)
    {
        var o = new Dictionary<string, HostArray>();
        var used = new HashSet<string>();
        HostArray Take(string name)
        {
            if (!raw.TryGetValue(name, out var a)) throw new CheckpointException(file, "missing from the checkpoint (text tower)", name);
            used.Add(name);
            return a;
        }
        void Linear(string src, string dst, bool bias = true)
        {
            o[dst + ".weight"] = Take(src + ".weight");
            if (bias) o[dst + ".bias"] = Take(src + ".bias");
        }
        const string t = "text_model.";
        o["token_embedding"] = Take(t + "embeddings.token_embedding.weight");
        o["pos_embed"] = Take(t + "embeddings.position_embedding.weight");
        for (int i = 0; raw.ContainsKey($"{t}encoder.layers.{i}.layer_norm1.weight"); i++)
        {
            string s = $"{t}encoder.layers.{i}.", d = $"blocks.{i}.";
            Linear(s + "layer_norm1", d + "norm1");
            Linear(s + "layer_norm2", d + "norm2");
            o[d + "attn.qkv.weight"] = HostArray.Concat0(Take(s + "self_attn.q_proj.weight"), Take(s + "self_attn.k_proj.weight"), Take(s + "self_attn.v_proj.weight"));
            o[d + "attn.qkv.bias"] = HostArray.Concat0(Take(s + "self_attn.q_proj.bias"), Take(s + "self_attn.k_proj.bias"), Take(s + "self_attn.v_proj.bias"));
            Linear(s + "self_attn.out_proj", d + "attn.proj");
            Linear(s + "mlp.fc1", d + "mlp.fc1");
            Linear(s + "mlp.fc2", d + "mlp.fc2");
        }
        Linear(t + "final_layer_norm", "norm");
        if (family == "clip") o["head.weight"] = Take("text_projection.weight");
        else Linear(t + "head", "head");
        foreach (var (k, v) in raw)
            if (!used.Contains(k)) o[k] = v; // unknown: the strict load names it
        return o;
    }

    /// <summary>L2-normalised text embeddings (B, D), one row per text.</summary>
    public HostArray EmbedTexts(IReadOnlyList<string> texts)
    {
        if (texts.Count == 0) throw new InputException("no texts");
        var ids = texts.Select(Tokenizer.Encode).ToList();
        var e = Text.Embed(ids, Tokenizer.PadId);
        NormalizeRows(e);
        return e;
    }

    /// <summary>L2-normalised image embeddings (B, D) of images preprocessed as the image tower expects: one pass.</summary>
    public HostArray EmbedImages(IReadOnlyList<Image> images)
    {
        var e = Image.Run(images, OutputKind.Logits); // CLIP: visual_projection is the head; SigLIP: the pooled features
        NormalizeRows(e);
        return e;
    }

    /// <summary>L2-normalised image embeddings of already preprocessed pixels (B, C, H, W).</summary>
    public HostArray EmbedPixels(HostArray pixels)
    {
        var e = Image.Model.Run(pixels, OutputKind.Logits);
        NormalizeRows(e);
        return e;
    }

    /// <summary>logits_per_image (I, T) = exp(scale)·image·textᵀ (+ bias) for normalised embeddings.</summary>
    public HostArray Logits(HostArray imageEmbeddings, HostArray textEmbeddings)
    {
        int ni = imageEmbeddings.Shape[0], nt = textEmbeddings.Shape[0], d = imageEmbeddings.Shape[1];
        if (textEmbeddings.Shape[1] != d) throw new InputException($"image embeddings {imageEmbeddings} and text embeddings {textEmbeddings} differ in width");
        float s = MathF.Exp(LogitScale);
        var o = new float[ni * nt];
        for (int i = 0; i < ni; i++)
            for (int j = 0; j < nt; j++)
                o[i * nt + j] = s * System.Numerics.Tensors.TensorPrimitives.Dot(imageEmbeddings.Data.AsSpan(i * d, d), textEmbeddings.Data.AsSpan(j * d, d)) + LogitBias;
        return new HostArray([ni, nt], o);
    }

    /// <summary>
    /// One embedding per label: each template (a string with "{}", where the label goes) embedded and normalised, the
    /// mean renormalised (CLIP's prompt ensembling). Cached per (label, templates): a label set costs one text pass.
    /// The cache is unbounded; a caller embedding labels it does not control (a server) bounds its own cache over
    /// <see cref="EmbedLabels"/>.
    /// </summary>
    public HostArray LabelEmbeddings(IReadOnlyList<string> labels, IReadOnlyList<string>? templates = null)
    {
        templates = CheckLabels(labels, templates);
        string key = string.Join("\u0001", templates);
        int d = EmbeddingDim;
        var o = new float[labels.Count * d];
        lock (_labelCache)
        {
            var missing = labels.Distinct().Where(l => !_labelCache.ContainsKey((l, key))).ToList();
            if (missing.Count > 0)
            {
                var e = EmbedLabels(missing, templates);
                for (int m = 0; m < missing.Count; m++) _labelCache[(missing[m], key)] = e.Data.AsSpan(m * d, d).ToArray();
            }
            for (int i = 0; i < labels.Count; i++) _labelCache[(labels[i], key)].CopyTo(o, i * d);
        }
        return new HostArray([labels.Count, d], o);
    }

    /// <summary>
    /// <see cref="LabelEmbeddings"/> without its cache: (labels, D), each row the renormalised mean of the label's
    /// templates' embeddings. The prompts (labels × templates) go through the text tower at most
    /// <paramref name="chunk"/> at a time, so a large label set does not hold all its activations at once.
    /// </summary>
    public HostArray EmbedLabels(IReadOnlyList<string> labels, IReadOnlyList<string>? templates = null, int chunk = 256)
    {
        templates = CheckLabels(labels, templates);
        int d = EmbeddingDim, nt = templates.Count;
        var o = new float[labels.Count * d];
        var prompts = labels.SelectMany(l => templates.Select(t => t.Replace("{}", l, StringComparison.Ordinal))).ToList();
        chunk = Math.Max(nt, chunk / nt * nt); // whole labels per chunk
        for (int start = 0; start < prompts.Count; start += chunk)
        {
            var e = EmbedTexts(prompts.GetRange(start, Math.Min(chunk, prompts.Count - start)));
            for (int p = 0; p < e.Shape[0]; p++)
                System.Numerics.Tensors.TensorPrimitives.Add(o.AsSpan((start + p) / nt * d, d), e.Data.AsSpan(p * d, d), o.AsSpan((start + p) / nt * d, d));
        }
        for (int i = 0; i < labels.Count; i++) Normalize(o.AsSpan(i * d, d));
        return new HostArray([labels.Count, d], o);
    }

    private static IReadOnlyList<string> CheckLabels(IReadOnlyList<string> labels, IReadOnlyList<string>? templates)
    {
        if (labels.Count == 0) throw new InputException("no labels");
        templates ??= ["{}"];
        if (templates.Count == 0) throw new InputException("no templates");
        foreach (var t in templates)
            if (!t.Contains("{}", StringComparison.Ordinal)) throw new InputException($"template '{t}' has no {{}} for the label");
        return templates;
    }

    /// <summary>Each image's scores for every label, best first: CLIP's softmax over the labels, SigLIP's sigmoid.</summary>
    public IReadOnlyList<IReadOnlyList<ZeroShotScore>> Classify(IReadOnlyList<Image> images, IReadOnlyList<string> labels,
        IReadOnlyList<string>? templates = null, int topK = int.MaxValue)
    {
        if (images.Count == 0) throw new InputException("no images");
        var text = LabelEmbeddings(labels, templates);
        return Scores(Logits(EmbedImages(images), text), labels, topK);
    }

    /// <summary>Scores from logits_per_image rows (softmax for CLIP, sigmoid for SigLIP), best first.</summary>
    public IReadOnlyList<IReadOnlyList<ZeroShotScore>> Scores(HostArray logits, IReadOnlyList<string> labels, int topK = int.MaxValue)
    {
        int n = logits.Shape[1];
        var result = new List<IReadOnlyList<ZeroShotScore>>();
        for (int i = 0; i < logits.Shape[0]; i++)
        {
            var row = logits.Data.AsSpan(i * n, n).ToArray();
            if (row.Any(v => !float.IsFinite(v))) throw new VitSharpException($"the model's logits for image {i} are not finite");
            var p = new float[n];
            if (Sigmoid) for (int j = 0; j < n; j++) p[j] = 1f / (1f + MathF.Exp(-row[j]));
            else
            {
                float max = row.Max();
                double sum = row.Sum(v => Math.Exp(v - max));
                for (int j = 0; j < n; j++) p[j] = (float)(Math.Exp(row[j] - max) / sum);
            }
            result.Add(Enumerable.Range(0, n).OrderByDescending(j => row[j]).ThenBy(j => j).Take(Math.Max(1, Math.Min(topK, n)))
                .Select(j => new ZeroShotScore(j, labels[j], p[j], row[j])).ToList());
        }
        return result;
    }

    /// <summary>Each row of <paramref name="a"/> (its last axis) scaled to unit length in place: the image tower's raw
    /// output becomes the embedding <see cref="EmbedPixels"/> returns.</summary>
    public static void NormalizeRows(HostArray a)
    {
        int d = a.Shape[^1];
        for (int i = 0; i < a.Data.Length / d; i++) Normalize(a.Data.AsSpan(i * d, d));
    }

    private static void Normalize(Span<float> v)
    {
        double s = 0;
        foreach (var x in v) s += (double)x * x;
        float inv = s > 0 ? (float)(1 / Math.Sqrt(s)) : 0;
        for (int i = 0; i < v.Length; i++) v[i] *= inv;
    }

    public void Dispose()
    {
        Image.Dispose();
        Text.Dispose();
    }
}

/// <summary>CLIP's prompt templates (prompts.md of OpenAI's CLIP repository, shipped in the library): one list per
/// dataset, "{}" where the class name goes.</summary>
public static class PromptTemplates
{
    private static readonly Lazy<Dictionary<string, string[]>> Shipped = new(() =>
    {
        using var s = typeof(PromptTemplates).Assembly.GetManifestResourceStream("VitSharp.clip-prompts.md")
            ?? throw new InvalidOperationException("the CLIP prompts resource is missing from the assembly");
        using var r = new StreamReader(s);
        return Parse(r.ReadToEnd());
    });

    /// <summary>The dataset names prompts.md has templates for (e.g. CIFAR10, Food101).</summary>
    public static IReadOnlyCollection<string> Names => Shipped.Value.Keys;

    /// <summary>"none" (the label alone), a dataset name of prompts.md (case-insensitive), or a file of templates one a line.</summary>
    public static string[] Get(string nameOrFile)
    {
        if (nameOrFile.Equals("none", StringComparison.OrdinalIgnoreCase)) return ["{}"];
        var hit = Shipped.Value.FirstOrDefault(kv => kv.Key.Equals(nameOrFile, StringComparison.OrdinalIgnoreCase));
        if (hit.Value is not null) return hit.Value;
        if (File.Exists(nameOrFile))
        {
            var lines = File.ReadAllLines(nameOrFile).Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')).ToArray();
            if (lines.Length == 0) throw new InputException($"{nameOrFile}: no templates");
            foreach (var l in lines)
                if (!l.Contains("{}", StringComparison.Ordinal)) throw new InputException($"{nameOrFile}: template '{l}' has no {{}} for the label");
            return lines;
        }
        throw new InputException($"templates '{nameOrFile}': neither 'none', a file, nor one of prompts.md's: {string.Join(", ", Names)}");
    }

    /// <summary>prompts.md's sections: "## Name", then a code block holding "templates = [ 'a photo of a {}.', … ]".</summary>
    internal static Dictionary<string, string[]> Parse(string markdown)
    {
        var o = new Dictionary<string, string[]>(StringComparer.Ordinal);
        string? section = null;
        List<string>? current = null;
        foreach (var raw in markdown.Split('\n'))
        {
            var line = raw.Trim();
            if (line.StartsWith("## ", StringComparison.Ordinal)) { section = line[3..].Trim(); current = null; continue; }
            if (section is null) continue;
            if (line.StartsWith("templates = [", StringComparison.Ordinal)) { current = new List<string>(); continue; }
            if (current is null) continue;
            if (line.StartsWith(']')) { o[section] = [.. current]; current = null; continue; }
            if (line.Length >= 2 && (line[0] is '\'' or '"'))
            {
                char q = line[0];
                int end = line.LastIndexOf(q);
                if (end > 0) current.Add(line[1..end].Replace("\\'", "'", StringComparison.Ordinal));
            }
        }
        return o;
    }
}

/// <summary>The JSON that <c>vit embed</c> prints and <c>/v1/embed-text</c> answers: embeddings, and with both texts and
/// images their cosine similarities and logits_per_image.</summary>
public static class ZeroShotJsonOutput
{
    public static JsonObject Embeddings(ZeroShotModel model, IReadOnlyList<string> texts, IReadOnlyList<string> imageNames, IReadOnlyList<Image> images)
    {
        var o = new JsonObject { ["model"] = model.Family, ["dim"] = model.EmbeddingDim, ["logit_scale"] = model.LogitScale };
        if (model.Sigmoid) o["logit_bias"] = model.LogitBias;
        HostArray? t = null, im = null;
        if (texts.Count > 0)
        {
            t = model.EmbedTexts(texts);
            o["texts"] = Rows(t, texts.Select(x => (JsonNode)new JsonObject { ["text"] = x }).ToList(), model.Tokenizer, texts);
        }
        if (images.Count > 0)
        {
            im = model.EmbedImages(images);
            o["images"] = Rows(im, imageNames.Select(x => (JsonNode)new JsonObject { ["image"] = x }).ToList(), null, null);
        }
        if (t is not null && im is not null)
        {
            var logits = model.Logits(im, t);
            float s = MathF.Exp(model.LogitScale);
            o["similarity"] = Matrix(logits, v => (v - model.LogitBias) / s);
            o["logits_per_image"] = Matrix(logits, v => v);
        }
        return o;
    }

    private static JsonArray Rows(HostArray a, List<JsonNode> heads, Text.ITextTokenizer? tok, IReadOnlyList<string>? texts)
    {
        int d = a.Shape[1];
        for (int i = 0; i < heads.Count; i++)
        {
            var row = (JsonObject)heads[i];
            if (tok is not null) row["input_ids"] = new JsonArray(tok.Encode(texts![i]).Select(x => (JsonNode)x).ToArray());
            row["embedding"] = new JsonArray(a.Data.Skip(i * d).Take(d).Select(x => (JsonNode)x).ToArray());
        }
        return new JsonArray([.. heads]);
    }

    private static JsonArray Matrix(HostArray a, Func<float, float> f)
    {
        int n = a.Shape[1];
        return new JsonArray(Enumerable.Range(0, a.Shape[0])
            .Select(i => (JsonNode)new JsonArray(a.Data.Skip(i * n).Take(n).Select(v => (JsonNode)f(v)).ToArray())).ToArray());
    }
}
