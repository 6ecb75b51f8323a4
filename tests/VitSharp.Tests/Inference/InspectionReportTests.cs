using System.Text.RegularExpressions;
using VitSharp.Checkpoints;
using VitSharp.Data.Codecs;
using VitSharp.Data.Transforms;
using VitSharp.Inference;
using VitSharp.Models;
using VitSharp.Tests.Cli;

namespace VitSharp.Tests.Inference;

/// <summary>`vit inspect`'s report from small seeded checkpoints: every section is there and its numbers are the real ones.</summary>
[Collection("cli")]
public class InspectionReportTests : IDisposable
{
    private readonly string _tmp = Directory.CreateTempSubdirectory("vitsharp-report-").FullName;

    public void Dispose() => Directory.Delete(_tmp, recursive: true);

    private static readonly VitConfig Vit = new() { ImageSize = 32, PatchSize = 8, EmbedDim = 48, Depth = 2, NumHeads = 3, MlpDim = 96, NumClasses = 5 };

    private string Seeded(ModelConfig config, string name)
    {
        var file = Path.Combine(_tmp, name + ".safetensors");
        Checkpoint.Save(file, config, Initializer.Init(config, seed: 7));
        return file;
    }

    private string Out(string name) => Path.Combine(_tmp, name);
    private static string Image128x96 => Path.Combine(AppContext.BaseDirectory, "Data", "images", "chelsea_crop128x96.png");

    [Fact]
    public void ReportOfASeededVitHoldsEverySectionWithRealValues()
    {
        var ckpt = Seeded(Vit, "vit");
        // Two inputs: a photo (preprocessed by the checkpoint's timm recipe) and a 2-row .npy of normalised noise.
        var rng = new Random(2);
        var npy = Path.Combine(_tmp, "noise.npy");
        Npy.Write(npy, Enumerable.Range(0, 2 * 3 * 32 * 32).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray(), [2, 3, 32, 32]);
        var dir = Out("vit-report");
        var (code, stdout, err) = CliRunner.Run("inspect", "-c", ckpt, "-o", dir, "-i", Image128x96, npy, "--components", "5");
        Assert.True(code == 0, err);
        Assert.Contains("report.html", stdout);

        // HTML: every section, every image embedded, nothing fetched from anywhere.
        var html = File.ReadAllText(Path.Combine(dir, "report.html"));
        foreach (var id in new[] { "filters", "position", "distance", "inputs", "files" }) Assert.Contains($"id=\"{id}\"", html);
        var srcs = Regex.Matches(html, "<img[^>]*\\ssrc=\"([^\"]*)\"").Select(m => m.Groups[1].Value).ToList();
        Assert.Equal(1 + 1 + 1 + 3 * 3 + 1, srcs.Count); // filters, similarity + bar, per input (seen, rollout, class), attention bar
        Assert.All(srcs, s => Assert.StartsWith("data:image/png;base64,", s));
        foreach (var s in srcs) Assert.True(ImageCodecs.Decode(Convert.FromBase64String(s[22..]), "img").Width > 0);
        Assert.DoesNotContain("http://", html.Replace("http://www.w3.org/2000/svg", ""));
        Assert.DoesNotContain("https://", html);
        Assert.Contains("network depth (layer)", html);
        Assert.Contains("mean attention distance (pixels)", html);
        Assert.Contains("renormalised", html); // the distance definition is stated
        foreach (var name in new[] { "chelsea_crop128x96", "noise_0", "noise_1" }) Assert.Contains($"<h3>{name}</h3>", html);

        // Position similarity: cosine, so 1 with itself, symmetric, and equal to a direct computation.
        var sim = Npy.Read(Path.Combine(dir, "position_similarity.npy"));
        Assert.Equal([16, 16], sim.Shape);
        var pos = Checkpoint.Load(ckpt).Weights["pos_embed"];
        for (int i = 0; i < 16; i++)
        {
            Assert.Equal(1f, sim.Data[i * 16 + i], 5);
            for (int j = 0; j < 16; j++)
            {
                Assert.Equal(sim.Data[i * 16 + j], sim.Data[j * 16 + i], 6);
                var a = pos.Data.AsSpan((1 + i) * 48, 48).ToArray(); var b = pos.Data.AsSpan((1 + j) * 48, 48).ToArray();
                double cos = a.Zip(b, (x, y) => (double)x * y).Sum() / Math.Sqrt(a.Sum(x => (double)x * x) * b.Sum(x => (double)x * x));
                Assert.Equal(cos, sim.Data[i * 16 + j], 5);
            }
        }

        // Attention: (layers, heads, tokens, tokens), every row a distribution.
        var attention = new[] { "chelsea_crop128x96", "noise_0", "noise_1" }.Select(n => Npy.Read(Path.Combine(dir, n + ".attention.npy"))).ToList();
        int t = 17;
        foreach (var att in attention)
        {
            Assert.Equal([2, 3, t, t], att.Shape);
            for (int row = 0; row < 2 * 3 * t; row++)
            {
                var r = att.Data.AsSpan(row * t, t);
                double sum = 0;
                foreach (var v in r) { Assert.InRange(v, 0f, 1f); sum += v; }
                Assert.Equal(1.0, sum, 5);
            }
        }

        // Mean attention distance, by hand from the written attention: patch centres 8 px apart on the 4×4 grid,
        // class-token column dropped, rows renormalised, averaged over 16 queries and the 3 inputs.
        var dist = Npy.Read(Path.Combine(dir, "mean_attention_distance.npy"));
        Assert.Equal([2, 3], dist.Shape);
        for (int l = 0; l < 2; l++)
            for (int h = 0; h < 3; h++)
            {
                double total = 0;
                foreach (var att in attention)
                    for (int q = 0; q < 16; q++)
                    {
                        double mass = 0, weighted = 0;
                        for (int k = 0; k < 16; k++)
                        {
                            double a = att.Data[((l * 3 + h) * t + 1 + q) * t + 1 + k];
                            double cy = (q / 4 + 0.5) * 8 - (k / 4 + 0.5) * 8, cx = (q % 4 + 0.5) * 8 - (k % 4 + 0.5) * 8;
                            mass += a; weighted += a * Math.Sqrt(cx * cx + cy * cy);
                        }
                        total += weighted / mass;
                    }
                Assert.Equal(total / 48, dist.Data[l * 3 + h], 3);
                Assert.InRange(dist.Data[l * 3 + h], 1f, 8 * Math.Sqrt(18));
            }

        // Class-token attention: the head mean of the class token's row over the patches, per layer.
        var cls = Npy.Read(Path.Combine(dir, "noise_1.class_attention.npy"));
        Assert.Equal([2, 4, 4], cls.Shape);
        for (int l = 0; l < 2; l++)
            for (int k = 0; k < 16; k++)
                Assert.Equal(Enumerable.Range(0, 3).Average(h => attention[2].Data[((l * 3 + h) * t) * t + 1 + k]), cls.Data[l * 16 + k], 6);

        // Rollout: scaled to [0, 1] over the grid.
        var rollout = Npy.Read(Path.Combine(dir, "noise_0.rollout.npy"));
        Assert.Equal([4, 4], rollout.Shape);
        Assert.Equal(1f, rollout.Data.Max());
        Assert.Equal(0f, rollout.Data.Min());

        // Components: unit norm, largest entry positive; variance fractions decreasing.
        var pcs = Npy.Read(Path.Combine(dir, "patch_embedding_components.npy"));
        Assert.Equal([5, 3, 8, 8], pcs.Shape);
        for (int c = 0; c < 5; c++)
        {
            var v = pcs.Data.AsSpan(c * 192, 192).ToArray();
            Assert.Equal(1.0, Math.Sqrt(v.Sum(x => (double)x * x)), 5);
            Assert.True(v.Max() >= -v.Min(), $"component {c}: its largest-magnitude entry is negative");
        }
        var variance = Npy.Read(Path.Combine(dir, "patch_embedding_explained_variance.npy")).Data;
        Assert.Equal(5, variance.Length);
        for (int c = 1; c < 5; c++) Assert.True(variance[c] <= variance[c - 1]);
        Assert.InRange(variance.Sum(), 0.01f, 1f);
    }

    [Fact]
    public void MapsAreRegisteredOnThePixelsTheModelSaw()
    {
        // timm at 48: shorter side 96 → ⌊48/0.875⌋ = 54 (128 → 72 wide), then the centre 48×48. The seen image is that crop,
        // not the whole (stretched) photo.
        var recipe = PreprocessRecipe.Timm(48);
        var photo = ImageCodecs.Decode(Image128x96);
        var expected = CenterCrop.Apply(Resize.Pil(photo.ToRgb(), 72, 54, Interpolation.Bicubic), 48, 48);
        var seen = InspectionReport.SeenImage(recipe.Apply(photo), 48, recipe);
        Assert.Equal(48, seen.Width);
        Assert.All(expected.Pixels!.Zip(seen.Pixels!), p => Assert.InRange(p.First - p.Second, -1, 1));
        var stretched = Resize.Pil(photo.ToRgb(), 48, 48, Interpolation.Bicubic);
        Assert.True(stretched.Pixels!.Zip(seen.Pixels!).Count(p => Math.Abs(p.First - p.Second) > 8) > 100, "the seen image differs from the stretched photo");

        // The report's input picture is exactly that crop (upscaled ×4 to 192 px).
        var dir = Out("registered");
        var (code, _, err) = CliRunner.Run("inspect", "-c", TestData.Small("vit_tiny48", "model.safetensors"), "--heads", "2", "-o", dir, "-i", Image128x96);
        Assert.True(code == 0, err);
        var shown = ImageCodecs.Decode(Path.Combine(dir, "chelsea_crop128x96.input.png"));
        Assert.Equal(192, shown.Width);
        for (int y = 0; y < 48; y++)
            for (int x = 0; x < 48; x++)
                for (int c = 0; c < 3; c++)
                    Assert.Equal(seen.Pixels![(y * 48 + x) * 3 + c], shown.Pixels![((y * 4) * 192 + x * 4) * 3 + c]);
    }

    [Fact]
    public void AViTWithoutAClassTokenGetsDistancesButNoRollout()
    {
        var dir = Out("gap");
        var ckpt = Seeded(Vit with { ClassToken = false, Pool = Pooling.Avg }, "noclass");
        var (code, stdout, err) = CliRunner.Run("inspect", "-c", ckpt, "-o", dir, "-i", Image128x96, "--json");
        Assert.True(code == 0, err);
        var printed = System.Text.Json.Nodes.JsonNode.Parse(stdout)!;
        Assert.EndsWith("report.html", (string)printed["report"]!);
        var files = printed["files"]!.AsArray().Select(f => (string)f!).ToList();
        Assert.Contains("chelsea_crop128x96.attention.npy", files);
        Assert.Contains("mean_attention_distance.npy", files);
        Assert.DoesNotContain("chelsea_crop128x96.rollout.npy", files);
        Assert.All(files, f => Assert.True(File.Exists(Path.Combine(dir, f)), f));
        var att = Npy.Read(Path.Combine(dir, "chelsea_crop128x96.attention.npy"));
        Assert.Equal([2, 3, 16, 16], att.Shape); // no prefix token: the 4×4 patches only
        Assert.Contains("no class token", File.ReadAllText(Path.Combine(dir, "report.html")));
        var dist = Npy.Read(Path.Combine(dir, "mean_attention_distance.npy"));
        Assert.Equal([2, 3], dist.Shape);
        Assert.All(dist.Data, d => Assert.InRange(d, 1f, 8 * MathF.Sqrt(18)));
    }

    /// <summary>A ViT with CCT's convolutional tokenizer (no patch projection): the filter panel shows the first
    /// convolution's 3×3 filters, attention distances use the tokenizer's stride as the patch size.</summary>
    [Fact]
    public void AConvTokenizerViTRendersItsFirstConvolutionsFilters()
    {
        var dir = Out("cct");
        var ckpt = Seeded(Vit with { PatchSize = 4, ConvTokenizer = new ConvTokenizerConfig { Layers = 2, Channels = 16 } }, "cct");
        var (code, _, err) = CliRunner.Run("inspect", "-c", ckpt, "-o", dir, "-i", Image128x96, "--components", "5");
        Assert.True(code == 0, err);
        var html = File.ReadAllText(Path.Combine(dir, "report.html"));
        Assert.Contains("First tokenizer convolution's 3×3 filters", html);
        var comps = Npy.Read(Path.Combine(dir, "patch_embedding_components.npy"));
        Assert.Equal([5, 3, 3, 3], comps.Shape);
        Assert.Contains(comps.Data, v => Math.Abs(v) > 0.1f);
        var att = Npy.Read(Path.Combine(dir, "chelsea_crop128x96.attention.npy"));
        Assert.Equal([2, 3, 65, 65], att.Shape); // 32² at stride 4: 8×8 tokens and the class token
    }

    [Fact]
    public void MixerReportShowsTheTokenMixingWeights()
    {
        var config = new MixerConfig { ImageSize = 32, PatchSize = 8, EmbedDim = 32, Depth = 2, TokenMlpDim = 24, ChannelMlpDim = 64, NumClasses = 3 };
        var ckpt = Seeded(config, "mixer");
        var dir = Out("mixer-report");
        var (code, _, err) = CliRunner.Run("inspect", "-c", ckpt, "-o", dir, "--components", "4", "-i", Image128x96);
        Assert.True(code == 0, err);
        var html = File.ReadAllText(Path.Combine(dir, "report.html"));
        Assert.Contains("id=\"token-mixing\"", html);
        Assert.Contains("the 1 input(s) given were read and checked", html);
        Assert.Contains("id=\"filters\"", html);
        Assert.DoesNotContain("id=\"position\"", html);
        var tm = Npy.Read(Path.Combine(dir, "token_mixing_weights.npy"));
        Assert.Equal([2, 16, 4, 4], tm.Shape);
        var w = Checkpoint.Load(ckpt).Weights;
        for (int l = 0; l < 2; l++)
            Assert.Equal(w[$"blocks.{l}.mlp_tokens.fc1.weight"].Data[..(16 * 16)], tm.Data.AsSpan(l * 256, 256).ToArray());
        var png = ImageCodecs.Decode(Path.Combine(dir, "token_mixing_weights.png"));
        Assert.Equal(16 * (4 * 8 + 2) + 2, png.Width);
        Assert.Equal(2 * (4 * 8 + 2) + 2, png.Height);
        Assert.Equal([4, 3, 8, 8], Npy.Read(Path.Combine(dir, "patch_embedding_components.npy")).Shape);
    }

    [Fact]
    public void BadInputsAreOneLineErrorsNamingTheFile()
    {
        var ckpt = Seeded(Vit, "vit");
        var wrong = Path.Combine(_tmp, "wrong.npy");
        Npy.Write(wrong, new float[2 * 3 * 16 * 16], [2, 3, 16, 16]);
        var garbage = Path.Combine(_tmp, "garbage.png");
        File.WriteAllBytes(garbage, [0x89, (byte)'P', (byte)'N', (byte)'G', 13, 10, 26, 10, 1, 2, 3]);
        var notNpy = Path.Combine(_tmp, "text.npy");
        File.WriteAllText(notNpy, "not an array");
        foreach (var bad in new[] { wrong, garbage, notNpy, Path.Combine(_tmp, "missing.png") })
        {
            var (code, _, err) = CliRunner.Run("inspect", "-c", ckpt, "-o", Out("bad"), "-i", bad);
            Assert.Equal(1, code);
            var line = Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.StartsWith("error: ", line);
            Assert.Contains(Path.GetFileName(bad), line);
        }
        var (c2, _, e2) = CliRunner.Run("inspect", "-c", ckpt, "-o", Out("bad"), "--components", "0");
        Assert.Equal(1, c2);
        Assert.Contains("--components", e2);
    }
}
