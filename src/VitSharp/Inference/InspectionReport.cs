using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using VitSharp.Checkpoints;
using VitSharp.Data;
using VitSharp.Data.Codecs;
using VitSharp.Data.Transforms;
using VitSharp.Models;

namespace VitSharp.Inference;

/// <summary>One input of an inspection: a name (used in file names and headings), where it came from, and the
/// normalised (3, S, S) array the model ran on.</summary>
public sealed record InspectionInput(string Name, string Source, float[] Chw);

/// <summary>What the report shows for one input: the pixels the model saw, its attention and the maps drawn from it.</summary>
public sealed record InspectedInput(string Name, string Source, Image Seen, HostArray Attention, HostArray? Rollout, HostArray? ClassAttention);

/// <summary>
/// <c>vit inspect</c>'s work: the ViT paper's figure 7 (patch-embedding principal components, position-embedding
/// similarity, mean attention distance per head and layer), per-input attention rollout and class-token attention
/// registered on exactly the pixels the model saw, and, for an MLP-Mixer, its token-mixing weights. <see cref="Write"/>
/// puts a self-contained HTML page (every image a data: URI, no network), the PNGs, every plotted quantity as .npy and
/// inspection.json into a folder. docs/INSPECT.md states each definition.
/// </summary>
public sealed class InspectionReport
{
    public required string CheckpointName { get; init; }
    public required ModelMetadata Metadata { get; init; }
    public ModelConfig Config => Metadata.Config;
    /// <summary>(K, C, P, P) unit-norm principal components of the patch-embedding filters, largest entry positive.</summary>
    public required HostArray Components { get; init; }
    public required double[] ExplainedVariance { get; init; }
    /// <summary>(N, N) cosine similarity of the patch position embeddings (ViT only).</summary>
    public HostArray? PositionSimilarity { get; init; }
    /// <summary>(L, H) mean attention distance in pixels over all inputs (ViT with inputs only).</summary>
    public double[][]? MeanAttentionDistance { get; init; }
    public IReadOnlyList<InspectedInput> Inputs { get; init; } = [];
    /// <summary>(L, U, G, G): per Mixer block, the first U hidden units of the token-mixing MLP's first layer as maps over the patch grid.</summary>
    public HostArray? TokenMixing { get; init; }

    /// <summary>How many inputs were given (a Mixer has no attention to map, so its report lists none in <see cref="Inputs"/>).</summary>
    public int InputsGiven { get; init; }

    /// <summary>Hidden units per block drawn for a Mixer.</summary>
    public const int TokenMixingUnits = 16;

    /// <summary>
    /// Inputs from image files (decoded and preprocessed with <paramref name="recipe"/>) or .npy arrays (N, 3, S, S),
    /// already normalised, as <c>vit run</c> takes them; folders are searched for images. Names come from the files
    /// (an .npy of N &gt; 1 rows gives name_0 … name_{N−1}), made unique and safe for file names.
    /// </summary>
    public static List<InspectionInput> LoadInputs(IEnumerable<string> paths, PreprocessRecipe recipe, ModelConfig config)
    {
        var inputs = new List<InspectionInput>();
        var used = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        string Unique(string name)
        {
            var safe = new string(name.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_').ToArray());
            if (safe.Length == 0) safe = "input";
            var candidate = safe;
            for (int i = 2; !used.Add(candidate); i++) candidate = $"{safe}_{i}";
            return candidate;
        }
        int s = config.ImageSize, per = config.InChannels * s * s;
        foreach (var path in paths)
        {
            if (path.EndsWith(".npy", StringComparison.OrdinalIgnoreCase))
            {
                var a = Npy.Read(path);
                if (a.Shape.Length == 3) a = a.Reshape([1, .. a.Shape]);
                if (a.Shape.Length != 4 || a.Shape[1] != config.InChannels || a.Shape[2] != s || a.Shape[3] != s || a.Shape[0] == 0)
                    throw new InputException($"{path}: array of shape {a} but the model takes (N,{config.InChannels},{s},{s}) normalised inputs");
                var stem = Path.GetFileNameWithoutExtension(path);
                for (int i = 0; i < a.Shape[0]; i++)
                    inputs.Add(new InspectionInput(Unique(a.Shape[0] == 1 ? stem : $"{stem}_{i}"), a.Shape[0] == 1 ? path : $"{path}[{i}]",
                        a.Data.AsSpan(i * per, per).ToArray()));
                continue;
            }
            var files = Classifier.ExpandImagePaths([path]);
            if (files.Count == 0) throw new InputException($"{path}: no image files");
            foreach (var f in files)
                inputs.Add(new InspectionInput(Unique(Path.GetFileNameWithoutExtension(f)), f, recipe.Apply(ImageCodecs.Decode(f))));
        }
        return inputs;
    }

    /// <summary>The 8-bit RGB image a normalised (3, S, S) input shows: x·std + mean, ×255, rounded and clamped.</summary>
    public static Image SeenImage(float[] chw, int size, PreprocessRecipe recipe)
    {
        int n = size * size;
        if (chw.Length != 3 * n) throw new ArgumentException($"input of {chw.Length} values is not 3×{size}×{size}");
        var px = new byte[n * 3];
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < n; i++)
                px[i * 3 + c] = (byte)Math.Clamp(Math.Round((chw[c * n + i] * recipe.Std[c] + recipe.Mean[c]) * 255), 0, 255);
        return new Image(size, size, 3, px);
    }

    /// <summary>Runs the inspection of <paramref name="classifier"/>'s model on <paramref name="inputs"/> (which may be empty).</summary>
    public static InspectionReport Build(Classifier classifier, IReadOnlyList<InspectionInput> inputs, int components = 28)
    {
        if (components < 1) throw new VitSharpException($"--components must be at least 1, not {components}");
        var ckpt = classifier.Checkpoint;
        var config = classifier.Model.Config;
        var w = ckpt.Weights;
        // A convolutional tokenizer (CCT) has no patch projection: its first 3×3 convolution's filters, which see the
        // pixels, take the patch filters' place in the PCA panel.
        string stem = config is MixerConfig ? "stem.proj.weight" : config is VitConfig { ConvTokenizer: not null } ? Nn.ConvTokenizer.WeightName(0) : "patch_embed.proj.weight";
        if (!w.TryGetValue(stem, out var filters)) throw new CheckpointException(ckpt.Path, "no patch-embedding weight", stem);
        var (pcs, variance) = Inspection.PatchEmbeddingPca(filters, components);
        var name = Path.GetFileName(ckpt.Path.TrimEnd('/', '\\'));

        if (config is MixerConfig mixer)
        {
            int g = mixer.GridSize, units = Math.Min(TokenMixingUnits, mixer.TokenMlpDim);
            var tm = new float[mixer.Depth * units * g * g];
            for (int l = 0; l < mixer.Depth; l++)
            {
                var key = $"blocks.{l}.mlp_tokens.fc1.weight";
                if (!w.TryGetValue(key, out var fc1)) throw new CheckpointException(ckpt.Path, "no token-mixing weight", key);
                Array.Copy(fc1.Data, 0, tm, (long)l * units * g * g, (long)units * g * g); // rows of (TokenMlpDim, G·G)
            }
            return new InspectionReport
            {
                CheckpointName = name, Metadata = classifier.Metadata, Components = pcs, ExplainedVariance = variance,
                TokenMixing = new HostArray([mixer.Depth, units, g, g], tm), InputsGiven = inputs.Count,
            };
        }

        var vit = (VitConfig)config;
        int grid = vit.GridSize, s = vit.ImageSize, t = vit.NumTokens;
        HostArray? similarity = null;
        if (w.TryGetValue("pos_embed", out var pos))
        {
            int prefix = vit.NoEmbedClass ? 0 : vit.PrefixTokens;
            similarity = Inspection.PositionSimilarity(pos, prefix, grid, grid);
        }
        if (inputs.Count == 0)
            return new InspectionReport { CheckpointName = name, Metadata = classifier.Metadata, Components = pcs, ExplainedVariance = variance, PositionSimilarity = similarity };

        var probs = CaptureAttention(classifier.Model, inputs, s);
        var distance = Inspection.AttentionDistance(probs, vit.PrefixTokens, grid, vit.PatchSize);
        var maps = new List<InspectedInput>();
        int layers = probs.Count, heads = vit.NumHeads;
        for (int i = 0; i < inputs.Count; i++)
        {
            var att = new float[(long)layers * heads * t * t];
            for (int l = 0; l < layers; l++)
                Array.Copy(probs[l].Data, (long)i * heads * t * t, att, (long)l * heads * t * t, (long)heads * t * t);
            maps.Add(new InspectedInput(inputs[i].Name, inputs[i].Source, SeenImage(inputs[i].Chw, s, classifier.Recipe),
                new HostArray([layers, heads, t, t], att),
                vit.ClassToken ? Inspection.AttentionRollout(probs, i, grid) : null,
                vit.ClassToken ? Inspection.ClassTokenAttention(probs, i, grid) : null));
        }
        return new InspectionReport
        {
            CheckpointName = name, Metadata = classifier.Metadata, Components = pcs, ExplainedVariance = variance,
            PositionSimilarity = similarity, MeanAttentionDistance = distance, Inputs = maps,
        };
    }

    /// <summary>Every attention layer's probabilities (B, H, T, T) for the inputs, on the host.</summary>
    private static List<HostArray> CaptureAttention(VisionModel model, IReadOnlyList<InspectionInput> inputs, int size)
    {
        var be = model.Backend;
        int per = 3 * size * size;
        var all = new float[inputs.Count * per];
        for (int i = 0; i < inputs.Count; i++) inputs[i].Chw.CopyTo(all, i * per);
        int[] shape = [inputs.Count, 3, size, size];
        model.CheckInput(shape);
        using var x = be.Allocate(shape, be.ComputeType);
        be.CopyFromHost(all, x);
        using var result = model.Forward(x, captureAttention: true);
        return result.AttentionProbs.Select(p =>
        {
            var host = new float[p.Length];
            be.CopyToHost(p, host);
            return new HostArray(p.Shape, host);
        }).ToList();
    }

    // ---- output -------------------------------------------------------------------------------------------------

    private sealed record Figure(string File, Image Image, string Alt);

    private int Zoom(int pixels, int target) => Math.Max(1, (int)Math.Ceiling(target / (double)pixels));

    private Figure FiltersFigure() => new("patch_embedding_pca.png",
        Render.Filters(Components, columns: 7, zoom: Math.Max(2, 64 / Components.Shape[2])),
        $"first {Components.Shape[0]} principal components of the {(Config is VitConfig { ConvTokenizer: not null } ? "first tokenizer convolution's 3×3" : "patch-embedding")} filters");

    private Figure? SimilarityFigure() => PositionSimilarity is null ? null : new("position_embedding_similarity.png",
        Render.SimilarityGrid(PositionSimilarity, Config.GridSize, zoom: Math.Max(2, 48 / Config.GridSize)),
        "cosine similarity of each position embedding with all others");

    private static readonly Func<float, (byte, byte, byte)> Viridis = Render.Colormap;
    private static readonly Func<float, (byte, byte, byte)> Signed = Render.Diverging;

    private IEnumerable<(InspectedInput Input, Figure Seen, Figure? Rollout, Figure? Cls)> InputFigures()
    {
        foreach (var input in Inputs)
        {
            int s = input.Seen.Width, zoom = Zoom(s, 192);
            var seen = new Figure($"{input.Name}.input.png", Render.Upscale(input.Seen, zoom), $"{input.Name}: the pixels the model saw");
            Figure? rollout = input.Rollout is null ? null : new($"{input.Name}.rollout.png",
                Render.Upscale(Render.Overlay(input.Seen, input.Rollout), zoom), $"{input.Name}: attention rollout");
            Figure? cls = null;
            if (input.ClassAttention is { } ca)
            {
                int l = ca.Shape[0], g = ca.Shape[1];
                var scaled = (float[])ca.Data.Clone();
                for (int k = 0; k < l; k++)
                {
                    var span = scaled.AsSpan(k * g * g, g * g);
                    float max = 0;
                    foreach (var v in span) max = Math.Max(max, v);
                    for (int j = 0; j < span.Length; j++) span[j] = max > 0 ? span[j] / max : 0;
                }
                int small = Zoom(s, 96);
                var tiles = Enumerable.Range(0, l).Select(k => Render.Upscale(Render.Overlay(input.Seen,
                    new HostArray([g, g], scaled.AsSpan(k * g * g, g * g).ToArray())), small)).ToList();
                cls = new Figure($"{input.Name}.class_attention.png", Strip(tiles, Math.Min(l, 6)), $"{input.Name}: class-token attention per layer");
            }
            yield return (input, seen, rollout, cls);
        }
    }

    private Figure? TokenMixingFigure()
    {
        if (TokenMixing is not { } tm) return null;
        int l = tm.Shape[0], u = tm.Shape[1], g = tm.Shape[2], n = g * g;
        var scale = new float[l * u];
        for (int k = 0; k < l * u; k++)
        {
            float m = 0;
            for (int j = 0; j < n; j++) m = Math.Max(m, Math.Abs(tm.Data[(long)k * n + j]));
            scale[k] = m;
        }
        var flat = new HostArray([l * u, g, g], tm.Data);
        var img = Render.Tiles(flat, columns: u, zoom: Math.Max(2, 32 / g),
            (k, v) => scale[k] > 0 ? 0.5f + 0.5f * v / scale[k] : 0.5f, Signed);
        return new Figure("token_mixing_weights.png", img, $"token-mixing weights: {u} hidden units (columns) of each of {l} blocks (rows)");
    }

    /// <summary>Equal-sized images side by side in rows of <paramref name="columns"/>, 4-pixel white gaps.</summary>
    private static Image Strip(IReadOnlyList<Image> images, int columns)
    {
        int w = images[0].Width, h = images[0].Height, gap = 4, rows = (images.Count + columns - 1) / columns;
        int W = columns * (w + gap) - gap, H = rows * (h + gap) - gap;
        var px = new byte[W * H * 3];
        Array.Fill(px, (byte)255);
        for (int i = 0; i < images.Count; i++)
        {
            int ox = (i % columns) * (w + gap), oy = (i / columns) * (h + gap);
            for (int y = 0; y < h; y++)
                Array.Copy(images[i].Pixels!, y * w * 3, px, ((oy + y) * W + ox) * 3, w * 3);
        }
        return new Image(W, H, 3, px);
    }

    /// <summary>Writes report.html, the PNGs, the .npy arrays and inspection.json into <paramref name="dir"/>; returns the files written.</summary>
    public IReadOnlyList<string> Write(string dir)
    {
        Directory.CreateDirectory(dir);
        var written = new List<string>();
        void Png(Figure? f) { if (f is null) return; var p = Path.Combine(dir, f.File); ImageCodecs.Save(f.Image, p); written.Add(p); }
        void Array(string file, HostArray a) { var p = Path.Combine(dir, file); Npy.Write(p, a.Data, a.Shape); written.Add(p); }

        var filters = FiltersFigure();
        var similarity = SimilarityFigure();
        var inputs = InputFigures().ToList();
        var mixing = TokenMixingFigure();
        Png(filters); Png(similarity); Png(mixing);
        foreach (var (_, seen, rollout, cls) in inputs) { Png(seen); Png(rollout); Png(cls); }

        Array("patch_embedding_components.npy", Components);
        Array("patch_embedding_explained_variance.npy", new HostArray([ExplainedVariance.Length], ExplainedVariance.Select(v => (float)v).ToArray()));
        if (PositionSimilarity is not null) Array("position_similarity.npy", PositionSimilarity);
        if (MeanAttentionDistance is { } d)
            Array("mean_attention_distance.npy", new HostArray([d.Length, d[0].Length], d.SelectMany(r => r.Select(v => (float)v)).ToArray()));
        if (TokenMixing is not null) Array("token_mixing_weights.npy", TokenMixing);
        foreach (var input in Inputs)
        {
            Array($"{input.Name}.attention.npy", input.Attention);
            if (input.Rollout is not null) Array($"{input.Name}.rollout.npy", input.Rollout);
            if (input.ClassAttention is not null) Array($"{input.Name}.class_attention.npy", input.ClassAttention);
        }

        var json = ToJson(written.Select(Path.GetFileName).ToList()!);
        var jsonPath = Path.Combine(dir, "inspection.json");
        AtomicFile.Write(jsonPath, s => s.Write(Encoding.UTF8.GetBytes(json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }))));
        written.Add(jsonPath);

        var html = ToHtml(filters, similarity, inputs, mixing);
        var htmlPath = Path.Combine(dir, "report.html");
        AtomicFile.Write(htmlPath, s => s.Write(Encoding.UTF8.GetBytes(html)));
        written.Add(htmlPath);
        return written;
    }

    private JsonObject ToJson(IReadOnlyList<string> files)
    {
        static JsonNode Num(double v) => JsonValue.Create(Math.Round(v, 6));
        var o = new JsonObject
        {
            ["checkpoint"] = CheckpointName,
            ["config"] = Config.ToJson(),
            ["metadata"] = Metadata.ToJsonObject(),
            ["patch_embedding_explained_variance"] = new JsonArray(ExplainedVariance.Select(Num).ToArray()),
        };
        if (MeanAttentionDistance is { } d)
            o["mean_attention_distance_px"] = new JsonArray(d.Select(l => (JsonNode)new JsonArray(l.Select(v => (JsonNode)JsonValue.Create(Math.Round(v, 3))).ToArray())).ToArray());
        o["inputs"] = new JsonArray(Inputs.Select(i => (JsonNode)new JsonObject { ["name"] = i.Name, ["source"] = i.Source }).ToArray());
        o["files"] = new JsonArray(files.Append("inspection.json").Append("report.html").Select(f => (JsonNode)f).ToArray());
        return o;
    }

    // ---- HTML ---------------------------------------------------------------------------------------------------

    private static string Steps(PreprocessRecipe? r) => r is null ? "none stated" : r.Resize == ResizeMode.Square
        ? (r.SourceSize > 0 ? $"{r.Interpolation.ToString().ToLowerInvariant()} resize to {r.SourceSize}×{r.SourceSize}, then " : "") + $"{r.Interpolation.ToString().ToLowerInvariant()} resize to {r.ImageSize}×{r.ImageSize}"
        : $"{r.Interpolation.ToString().ToLowerInvariant()} resize of the shorter side to ⌊{r.ImageSize}/{F(r.CropPct)}⌋, centre crop {r.ImageSize}×{r.ImageSize}";

    private static string E(string s) => WebUtility.HtmlEncode(s);
    private static string F(double v, string format = "0.###") => v.ToString(format, CultureInfo.InvariantCulture);

    private static string DataUri(Image image)
    {
        using var ms = new MemoryStream();
        new PngEncoder().Encode(image, ms);
        return "data:image/png;base64," + Convert.ToBase64String(ms.ToArray());
    }

    private static string Img(Figure f, string cls = "") =>
        $"<img class=\"{cls}\" src=\"{DataUri(f.Image)}\" width=\"{f.Image.Width}\" height=\"{f.Image.Height}\" alt=\"{E(f.Alt)}\" title=\"{E(f.File)}\">";

    private static string ColourBar(Func<float, (byte, byte, byte)> map, string low, string mid, string high, string label) =>
        $"<figure class=\"bar\"><img src=\"{DataUri(Render.ColourBar(map))}\" width=\"256\" height=\"14\" alt=\"colour bar: {E(label)}\">" +
        $"<div class=\"ticks\"><span>{E(low)}</span><span>{E(mid)}</span><span>{E(high)}</span></div><figcaption>{E(label)}</figcaption></figure>";

    private string ToHtml(Figure filters, Figure? similarity, IReadOnlyList<(InspectedInput Input, Figure Seen, Figure? Rollout, Figure? Cls)> inputs, Figure? mixing)
    {
        var c = Config;
        var r = Metadata.Preprocess;
        var h = new StringBuilder();
        h.Append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
        h.Append("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">");
        h.Append($"<title>vit inspect: {E(CheckpointName)}</title><style>");
        h.Append("body{font:14px/1.45 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}");
        h.Append("h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}");
        h.Append("img{image-rendering:pixelated;vertical-align:top}figure{display:inline-block;margin:0 1.5em 1em 0}");
        h.Append("figcaption{font-size:.9em;color:#555;max-width:640px}.def{background:#f6f6f6;padding:.5em .8em;border-left:3px solid #999}");
        h.Append(".bar .ticks{display:flex;justify-content:space-between;width:256px;font-size:.85em}table{border-collapse:collapse}");
        h.Append("td,th{padding:.15em .8em;border-bottom:1px solid #eee;text-align:left}svg text{font:12px system-ui,sans-serif}");
        h.Append("</style></head><body>\n");
        h.Append($"<h1>What the model learned: {E(CheckpointName)}</h1>\n<table>");
        h.Append($"<tr><th>architecture</th><td>{E(c.Architecture)}</td></tr><tr><th>input</th><td>{c.ImageSize}×{c.ImageSize}, patches {c.PatchSize}×{c.PatchSize} ({c.GridSize}×{c.GridSize} grid)</td></tr>");
        h.Append($"<tr><th>depth × width</th><td>{c.Depth} × {c.EmbedDim}{(c is VitConfig v ? $", {v.NumHeads} heads, {(v.ClassToken ? "class token" : "no class token")}" : "")}</td></tr>");
        if (r is not null) h.Append($"<tr><th>preprocessing</th><td>{E(r.Name)}: {E(Steps(r))}, mean ({string.Join(", ", r.Mean.Select(x => F(x)))}), std ({string.Join(", ", r.Std.Select(x => F(x)))})</td></tr>");
        h.Append("</table>\n");

        bool conv = c is VitConfig { ConvTokenizer: not null };
        h.Append(conv
            ? "<h2 id=\"filters\">First tokenizer convolution's 3×3 filters: principal components</h2>\n<p>This model's tokens come from a convolutional tokenizer (CCT) rather than a patch projection: the filters shown are its first 3×3 convolution's, the layer that sees the pixels.</p>\n"
            : "<h2 id=\"filters\">Patch-embedding filters: principal components</h2>\n");
        h.Append($"<figure>{Img(filters)}<figcaption>The first {Components.Shape[0]} principal components, left to right, top to bottom. " +
                 $"Explained variance: {string.Join(", ", ExplainedVariance.Take(8).Select(x => F(100 * x, "0.0") + "%"))}{(ExplainedVariance.Length > 8 ? ", …" : "")}.</figcaption></figure>\n");
        h.Append("<p class=\"def\">The D filters of the patch embedding, each flattened to C·P·P values, are centred (the mean filter subtracted); " +
                 "components are the eigenvectors of their covariance, largest eigenvalue first, each of unit norm with its entry of largest magnitude positive (a fixed sign). " +
                 "Each tile shows one component's C×P×P values as RGB, scaled on its own: its minimum is black, its maximum full intensity.</p>\n");

        if (similarity is not null)
        {
            h.Append("<h2 id=\"position\">Position-embedding similarity</h2>\n");
            h.Append($"<figure>{Img(similarity)}<figcaption>Tile (row i, column j) belongs to the patch at grid position (i, j); within it, pixel (r, c) is the similarity of that position's embedding to the one at (r, c).</figcaption></figure>");
            h.Append(ColourBar(Viridis, "−1", "0", "1", "cosine similarity"));
            h.Append($"<p class=\"def\">Cosine similarity ⟨pᵢ, pⱼ⟩ / (‖pᵢ‖‖pⱼ‖) between the learned position embeddings of the {c.NumPatches} patches (the class token's own embedding left out); the diagonal is 1.</p>\n");
        }

        if (MeanAttentionDistance is { } dist)
        {
            h.Append("<h2 id=\"distance\">Mean attention distance per head</h2>\n");
            h.Append(Scatter(dist, c));
            h.Append($"<p class=\"def\">For each patch query i, Σⱼ aᵢⱼ·dᵢⱼ over the patch keys j, where dᵢⱼ is the distance in pixels between the centres of patches i and j " +
                     $"(grid distance × {c.PatchSize}) and aᵢⱼ the head's attention weights with the class token's column dropped and the row renormalised to sum to 1; " +
                     $"averaged over all {c.NumPatches} queries and all {Inputs.Count} input(s). One dot per head; the paper's figure 7 (right) averages over 128 images.</p>\n");
        }

        if (inputs.Count > 0)
        {
            h.Append("<h2 id=\"inputs\">Attention on each input</h2>\n");
            h.Append($"<p class=\"def\">Every map is drawn on the pixels the model saw: the input after its preprocessing ({E(Steps(r))}), shown by undoing the normalisation (x·std + mean). " +
                     "<b>Rollout</b> (Abnar &amp; Zuidema 2020): Π over layers of (½·mean over heads of A + ½·I), each factor's rows renormalised; the class token's row over the patches, scaled to [0, 1]. " +
                     "<b>Class-token attention</b>: per layer, the class token's raw attention to each patch averaged over heads, each layer scaled by its own maximum. " +
                     "Heat maps are upsampled bilinearly from the patch grid and blended 50/50 over the image.</p>\n");
            h.Append(ColourBar(Viridis, "0", "", "max", "attention (each map scaled to its maximum)"));
            foreach (var (input, seen, rollout, cls) in inputs)
            {
                h.Append($"<h3>{E(input.Name)}</h3><p><small>from {E(Path.GetFileName(input.Source))}</small></p>");
                h.Append($"<figure>{Img(seen)}<figcaption>input as the model saw it</figcaption></figure>");
                if (rollout is not null) h.Append($"<figure>{Img(rollout)}<figcaption>attention rollout</figcaption></figure>");
                if (cls is not null) h.Append($"<figure>{Img(cls)}<figcaption>class-token attention, layers 1–{c.Depth} left to right, top to bottom</figcaption></figure>");
                if (rollout is null) h.Append("<p>This model has no class token: rollout and class-token maps are not drawn (its attention is in the .npy).</p>");
                h.Append('\n');
            }
        }
        else if (c is VitConfig)
            h.Append("<h2 id=\"inputs\">Attention</h2><p>No inputs were given (<code>--input</code>): mean attention distance, rollout and class-token maps need images.</p>\n");

        if (mixing is not null)
        {
            h.Append("<h2 id=\"token-mixing\">Token-mixing weights</h2>\n");
            h.Append($"<figure>{Img(mixing)}<figcaption>Row l: block l; column u: hidden unit u of the token-mixing MLP's first layer, as a {c.GridSize}×{c.GridSize} map over the patch grid.</figcaption></figure>");
            h.Append(ColourBar(Signed, "−max", "0", "+max", "weight (each unit scaled to its largest |weight|)"));
            h.Append($"<p class=\"def\">The weights W[u, :] of blocks.l.mlp_tokens.fc1 (the first {TokenMixing!.Shape[1]} of each block's hidden units), one per patch position, as in the MLP-Mixer paper's figure 5. " +
                     "A Mixer has no attention or position embeddings: those views do not apply" +
                     (InputsGiven > 0 ? $" (the {InputsGiven} input(s) given were read and checked, but there is no attention to draw on them)" : "") + ".</p>\n");
        }

        h.Append("<h2 id=\"files\">Numbers</h2><p>Every plotted quantity is also written as float32 .npy beside this page: ");
        h.Append("patch_embedding_components (K, C, P, P), patch_embedding_explained_variance (K)");
        if (PositionSimilarity is not null) h.Append(", position_similarity (N, N)");
        if (MeanAttentionDistance is not null) h.Append(", mean_attention_distance (layers, heads) in pixels");
        if (Inputs.Count > 0) h.Append(", per input NAME.attention (layers, heads, tokens, tokens), NAME.rollout (G, G), NAME.class_attention (layers, G, G)");
        if (TokenMixing is not null) h.Append(", token_mixing_weights (blocks, units, G, G)");
        h.Append(".</p>\n</body></html>\n");
        return h.ToString();
    }

    /// <summary>An inline SVG scatter plot: network depth (layer) on x, mean attention distance on y, one dot per head.</summary>
    private static string Scatter(double[][] dist, ModelConfig c)
    {
        const int W = 560, H = 340, L = 60, R = 110, T = 20, B = 50;
        int layers = dist.Length, heads = dist[0].Length;
        double max = Math.Max(dist.SelectMany(x => x).DefaultIfEmpty(0).Max(), 1);
        double step = NiceStep(max / 5);
        double top = Math.Ceiling(max / step) * step;
        double X(double layer) => L + (layer - 0.5) / layers * (W - L - R);
        double Y(double v) => T + (1 - v / top) * (H - T - B);
        var s = new StringBuilder();
        s.Append($"<figure><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"mean attention distance per head versus layer\">");
        s.Append($"<rect x=\"{L}\" y=\"{T}\" width=\"{W - L - R}\" height=\"{H - T - B}\" fill=\"none\" stroke=\"#444\"/>");
        for (double v = 0; v <= top + 1e-9; v += step)
            s.Append($"<line x1=\"{L - 4}\" x2=\"{W - R}\" y1=\"{F(Y(v))}\" y2=\"{F(Y(v))}\" stroke=\"#ddd\"/><text x=\"{L - 7}\" y=\"{F(Y(v) + 4)}\" text-anchor=\"end\">{F(v)}</text>");
        int every = Math.Max(1, (int)Math.Ceiling(layers / 12.0));
        for (int l = 1; l <= layers; l++)
            if ((l - 1) % every == 0 || l == layers)
                s.Append($"<line x1=\"{F(X(l))}\" x2=\"{F(X(l))}\" y1=\"{H - B}\" y2=\"{H - B + 4}\" stroke=\"#444\"/><text x=\"{F(X(l))}\" y=\"{H - B + 17}\" text-anchor=\"middle\">{l}</text>");
        s.Append($"<text x=\"{(L + W - R) / 2}\" y=\"{H - 10}\" text-anchor=\"middle\">network depth (layer)</text>");
        s.Append($"<text transform=\"translate(16 {(T + H - B) / 2}) rotate(-90)\" text-anchor=\"middle\">mean attention distance (pixels)</text>");
        for (int head = 0; head < heads; head++)
        {
            var (r, g, b) = Render.Colormap(heads == 1 ? 0 : head / (float)(heads - 1));
            string colour = $"rgb({r},{g},{b})";
            for (int l = 0; l < layers; l++)
            {
                double jitter = heads == 1 ? 0 : (head / (double)(heads - 1) - 0.5) * 0.3;
                s.Append($"<circle cx=\"{F(X(l + 1 + jitter))}\" cy=\"{F(Y(dist[l][head]))}\" r=\"4\" fill=\"{colour}\" stroke=\"#333\" stroke-width=\"0.5\"><title>layer {l + 1}, head {head + 1}: {F(dist[l][head], "0.0")} px</title></circle>");
            }
            if (head < 16)
                s.Append($"<circle cx=\"{W - R + 16}\" cy=\"{T + 8 + head * 16}\" r=\"4\" fill=\"{colour}\" stroke=\"#333\" stroke-width=\"0.5\"/><text x=\"{W - R + 26}\" y=\"{T + 12 + head * 16}\">head {head + 1}</text>");
        }
        s.Append($"</svg><figcaption>Mean attention distance of each head (dots, coloured by head index) in each of the {layers} layers; image {c.ImageSize}×{c.ImageSize} px.</figcaption></figure>");
        return s.ToString();
    }

    private static double NiceStep(double raw)
    {
        double p = Math.Pow(10, Math.Floor(Math.Log10(Math.Max(raw, 1e-9))));
        double m = raw / p;
        return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
    }
}
