using VitSharp.Backends.Cpu;
using VitSharp.Checkpoints;
using VitSharp.Models;
using VitSharp.Tests.Models;
using Xunit.Abstractions;

namespace VitSharp.Tests.Checkpoints;

/// <summary>
/// `vit convert`'s library side (<see cref="CheckpointWriter"/>): every reference checkpoint, in every format that can
/// express its family, written, read back and run — the same tensors bit for bit and the same outputs bit for bit in
/// f32 (within bf16 rounding in bf16); the formats that cannot express a family refuse it by name, writing nothing.
/// </summary>
[Collection("cli")]
public sealed class ConversionTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _tmp = Directory.CreateTempSubdirectory("vitsharp-convert-").FullName;

    public void Dispose() => Directory.Delete(_tmp, recursive: true);

    /// <summary>A reference checkpoint: where it is, what loading it needs, and its input.</summary>
    /// <summary><paramref name="Input"/>: null for a seeded random batch at the model's size.</summary>
    private sealed record Source(string Path, LoadOptions Options, string? Input);

    private static Source Small(string folder, string file, int? heads) =>
        new(TestData.Small(folder, file), new LoadOptions { Heads = heads }, TestData.Small(folder, "input.npy"));

    private static Source Family(string name, string file, LoadOptions? o = null) =>
        new(Path.Combine(FamilyParityTests.Dir(name), file), o ?? new LoadOptions(), Path.Combine(FamilyParityTests.Dir(name), "input.npy"));

    private static readonly Dictionary<string, Source> Sources = new()
    {
        ["vit_tiny48"] = Small("vit_tiny48", "model.safetensors", 2),
        ["vit_tiny48_npz"] = Small("vit_tiny48", "model_google.npz", null),
        ["vit_tiny48_hf"] = Small("vit_tiny48", "hf", null),
        ["vit_tiny48_gap"] = Small("vit_tiny48_gap", "model.safetensors", 2),
        ["mixer_tiny48"] = Small("mixer_tiny48", "model.safetensors", null),
        // A timm state dict saved by torch.save, and a training checkpoint (state_dict, 'module.' names, bf16 storages).
        ["vit_tiny48_pt"] = new(Path.Combine(AppContext.BaseDirectory, "Data", "pt", "vit_tiny48.pt"), new LoadOptions { Heads = 2 }, TestData.Small("vit_tiny48", "input.npy")),
        ["vit_tiny48_train_pth"] = new(Path.Combine(AppContext.BaseDirectory, "Data", "pt", "vit_tiny48_train.pth"), new LoadOptions { Heads = 2 }, TestData.Small("vit_tiny48", "input.npy")),
        // VitSharp's own bf16 file with its record (the shipped CIFAR-10 model: class names, its training normalisation).
        ["shipped"] = new(VitSharp.Cli.DefaultModel.BundledPath, new LoadOptions(), null),
        ["deit_distilled"] = Family("deit_distilled", "model.safetensors", new LoadOptions { Heads = 2 }),
        ["vit_reg4"] = Family("vit_reg4", "model.safetensors", new LoadOptions { Heads = 2 }),
        ["vit_layerscale_qknorm"] = Family("vit_layerscale_qknorm", "model.safetensors", new LoadOptions { Heads = 2 }),
        ["vit_clip_quickgelu"] = Family("vit_clip_quickgelu", "model.safetensors", new LoadOptions { Heads = 2, Gelu = Backends.Activation.QuickGelu, LayerNormEps = 1e-5f }),
        ["vit_siglip_map"] = Family("vit_siglip_map", "model.safetensors", new LoadOptions { Heads = 2, Gelu = Backends.Activation.GeluTanh }),
        ["vit_dinov2_reg"] = Family("vit_dinov2_reg", "model.safetensors", new LoadOptions { Heads = 2, DynamicImgSize = true }),
        ["vit_avg_nocls"] = Family("vit_avg_nocls", "model.safetensors", new LoadOptions { Heads = 2 }),
        ["vit_no_qkv_bias_relu"] = Family("vit_no_qkv_bias_relu", "model.safetensors", new LoadOptions { Heads = 2, Gelu = Backends.Activation.Relu }),
        ["hf_deit_teacher"] = Family("hf_deit_teacher", ""),
        ["hf_dinov2"] = Family("hf_dinov2", ""),
        ["hf_clip_vision"] = Family("hf_clip_vision", ""),
        ["hf_siglip_vision"] = Family("hf_siglip_vision", ""),
        ["lucid_vit"] = Family("lucid_vit", "model.pt", new LoadOptions { Heads = 4, ImageSize = 32 }),
        ["lucid_vit_mean"] = Family("lucid_vit_mean", "model.pt", new LoadOptions { Heads = 2, ImageSize = 32 }),
        ["lucid_simple_vit"] = Family("lucid_simple_vit", "model.pt", new LoadOptions { Heads = 2, ImageSize = 32 }),
    };

    private const string Ok = "";

    /// <summary>(source, format, "" when the format expresses the family, else a word of the feature it lacks).</summary>
    public static IEnumerable<object[]> Cases()
    {
        var npzRefuses = new Dictionary<string, string>
        {
            ["vit_tiny48_gap"] = "fc_norm", ["deit_distilled"] = "distillation token", ["vit_reg4"] = "register tokens",
            ["vit_layerscale_qknorm"] = "layer scale", ["vit_clip_quickgelu"] = "quick_gelu", ["vit_siglip_map"] = "attention-pool",
            ["vit_dinov2_reg"] = "register tokens", ["vit_avg_nocls"] = "fc_norm", ["vit_no_qkv_bias_relu"] = "relu",
            ["hf_deit_teacher"] = "distillation token", ["hf_dinov2"] = "layer scale", ["hf_clip_vision"] = "quick_gelu",
            ["hf_siglip_vision"] = "attention-pool", ["lucid_vit"] = "pixel LayerNorm", ["lucid_vit_mean"] = "pixel LayerNorm",
            ["lucid_simple_vit"] = "pixel LayerNorm",
        };
        var hfRefuses = new Dictionary<string, string>
        {
            ["vit_tiny48_gap"] = "avg pooling", ["mixer_tiny48"] = "MLP-Mixer", ["vit_reg4"] = "classifier head",
            ["vit_layerscale_qknorm"] = "qk_norm", ["vit_clip_quickgelu"] = "classifier head", ["vit_siglip_map"] = "classifier head",
            ["vit_dinov2_reg"] = "classifier head", ["vit_avg_nocls"] = "avg pooling", ["lucid_vit"] = "pixel LayerNorm",
            ["lucid_vit_mean"] = "pixel LayerNorm", ["lucid_simple_vit"] = "pixel LayerNorm",
        };
        foreach (var name in Sources.Keys)
        {
            yield return [name, "timm", name.StartsWith("lucid", StringComparison.Ordinal) ? "pixel LayerNorm" : Ok];
            yield return [name, "vitsharp", Ok];
            yield return [name, "npz", npzRefuses.GetValueOrDefault(name, Ok)];
            yield return [name, "hf", hfRefuses.GetValueOrDefault(name, Ok)];
        }
    }

    /// <summary>What a file of this format does not state, given to the reader as a user would (--heads, --gelu, …).</summary>
    private static LoadOptions Stated(ModelConfig c, CheckpointFormat f) => f is CheckpointFormat.VitSharp or CheckpointFormat.HuggingFace
        ? new LoadOptions()
        : new LoadOptions
        {
            Heads = c is VitConfig v && f == CheckpointFormat.Timm ? v.NumHeads : null,
            Gelu = c.Gelu, LayerNormEps = c.LayerNormEps,
            DynamicImgSize = c is VitConfig { DynamicImgSize: true } ? true : null,
        };

    private static string Target(string dir, string name, CheckpointFormat f) => Path.Combine(dir, name + f switch
    {
        CheckpointFormat.Npz => ".npz",
        CheckpointFormat.HuggingFace => "-hf",
        _ => $".{CheckpointWriter.FormatName(f)}.safetensors",
    });

    private static HostArray Input(Source s, ModelConfig c)
    {
        if (s.Input is not null) return Npy.Read(s.Input);
        var rng = new Random(11);
        int n = 2 * c.InChannels * c.ImageSize * c.ImageSize;
        return new HostArray([2, c.InChannels, c.ImageSize, c.ImageSize], Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray());
    }

    /// <summary>The model's outputs: logits (pooled features without a head) and tokens.</summary>
    private static (float[] main, float[] tokens) Outputs(Checkpoint c, HostArray input)
    {
        using var m = c.CreateModel(CpuBackend.Instance);
        return ((c.Config.NumClasses > 0 ? m.Run(input) : m.Run(input, OutputKind.Pooled)).Data, m.Run(input, OutputKind.Tokens).Data);
    }

    private static void SameTensors(IReadOnlyDictionary<string, HostArray> expected, IReadOnlyDictionary<string, HostArray> actual)
    {
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), actual.Keys.Order(StringComparer.Ordinal));
        foreach (var (k, a) in expected)
        {
            Assert.True(a.Shape.SequenceEqual(actual[k].Shape), $"{k}: shape {a} became {actual[k]}");
            Assert.True(a.Data.AsSpan().SequenceEqual(actual[k].Data), $"{k}: values differ");
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void ConvertsAndReadsBackBitForBit(string name, string format, string refused)
    {
        var src = Sources[name];
        var ckpt = Checkpoint.Load(src.Path, src.Options);
        var f = CheckpointWriter.ParseFormat(format);
        var path = Target(_tmp, name, f);
        if (refused != Ok)
        {
            var e = Assert.Throws<ConversionException>(() => CheckpointWriter.Write(ckpt, path, f));
            output.WriteLine(e.Message);
            Assert.Contains(refused, e.Message);
            Assert.Contains(path, e.Message);
            Assert.DoesNotContain('\n', e.Message);
            Assert.False(File.Exists(path) || Directory.Exists(path), "a refused conversion wrote nothing");
            return;
        }
        var result = CheckpointWriter.Write(ckpt, path, f);
        foreach (var n in result.Notes) output.WriteLine("note: " + n);
        var back = Checkpoint.Load(path, Stated(ckpt.Config, f));
        Assert.Equal(ckpt.Config, back.Config);
        SameTensors(ckpt.Weights, back.Weights);
        var input = Input(src, ckpt.Config);
        var (main, tokens) = Outputs(ckpt, input);
        var (main2, tokens2) = Outputs(back, input);
        Assert.Equal(main, main2);
        Assert.Equal(tokens, tokens2);
        if (f == CheckpointFormat.VitSharp) Assert.Equal(ckpt.Labels, back.Labels);
        // VitSharp's record states the preprocessing; a Hugging Face folder does when ViTImageProcessor can express it.
        if (f == CheckpointFormat.VitSharp || f == CheckpointFormat.HuggingFace && !result.Notes.Any(n => n.Contains("preprocessor_config")))
            SameRecipe(VitSharp.Inference.Recipes.For(ckpt), VitSharp.Inference.Recipes.For(back));
    }

    private static void SameRecipe(VitSharp.Data.Transforms.PreprocessRecipe a, VitSharp.Data.Transforms.PreprocessRecipe b)
    {
        Assert.Equal((a.Resize, a.Interpolation, a.ImageSize, a.Antialias), (b.Resize, b.Interpolation, b.ImageSize, b.Antialias));
        if (a.Resize != VitSharp.Data.Transforms.ResizeMode.Square) Assert.Equal(a.CropPct, b.CropPct); // a square resize crops nothing
        Assert.Equal(a.Mean, b.Mean);
        Assert.Equal(a.Std, b.Std);
    }

    /// <summary>Class names travel in VitSharp's record and in config.json's id2label; a timm file has no place for them
    /// and says so.</summary>
    [Fact]
    public void ClassNamesTravelWhereTheFormatHasAPlace()
    {
        var src = Sources["vit_tiny48"];
        var names = Enumerable.Range(0, 10).Select(i => $"class {i}").ToArray();
        var ckpt = Checkpoint.Load(src.Path, src.Options) with { Labels = names };
        foreach (var f in new[] { CheckpointFormat.VitSharp, CheckpointFormat.HuggingFace })
        {
            var path = Target(_tmp, "labels", f);
            CheckpointWriter.Write(ckpt, path, f);
            Assert.Equal(names, Checkpoint.Load(path).Labels);
        }
        var timm = CheckpointWriter.Write(ckpt, Target(_tmp, "labels", CheckpointFormat.Timm), CheckpointFormat.Timm);
        Assert.Contains(timm.Notes, n => n.Contains("class names are not kept"));
        Assert.Contains(timm.Notes, n => n.Contains("--heads 2"));
    }

    /// <summary>bf16 files hold the weights rounded to nearest even: read back they are exactly those, and the model
    /// computes what the f32 model with rounded weights computes.</summary>
    [Theory]
    [InlineData("vit_tiny48", "vitsharp")]
    [InlineData("vit_tiny48", "timm")]
    [InlineData("hf_dinov2", "hf")]
    [InlineData("hf_siglip_vision", "hf")]
    [InlineData("deit_distilled", "hf")]
    public void Bf16KeepsTheRoundedWeights(string name, string format)
    {
        var src = Sources[name];
        var ckpt = Checkpoint.Load(src.Path, src.Options);
        var f = CheckpointWriter.ParseFormat(format);
        var path = Target(_tmp, name, f);
        Assert.Equal("BF16", CheckpointWriter.Write(ckpt, path, f, "BF16").DType);
        var rounded = ckpt with
        {
            Weights = ckpt.Weights.ToDictionary(kv => kv.Key, kv => new HostArray(kv.Value.Shape,
                kv.Value.Data.Select(x => VitSharp.Tensors.BFloat16Convert.ToFloat(VitSharp.Tensors.BFloat16Convert.FromFloat(x))).ToArray())),
        };
        var back = Checkpoint.Load(path, Stated(ckpt.Config, f));
        SameTensors(rounded.Weights, back.Weights);
        var input = Input(src, ckpt.Config);
        Assert.Equal(Outputs(rounded, input).main, Outputs(back, input).main);
        var (exact, _) = Outputs(ckpt, input);
        float worst = exact.Zip(Outputs(back, input).main, (a, b) => Math.Abs(a - b)).Max();
        output.WriteLine($"bf16 vs f32 outputs: max |Δ| = {worst:G3}");
        Assert.InRange(worst, 0, 0.05f);
    }

    /// <summary>A → B → A gives A's own file back: the same names, shapes and values.</summary>
    [Theory]
    [InlineData("vit_tiny48", "npz")]
    [InlineData("vit_tiny48", "hf")]
    [InlineData("mixer_tiny48", "npz")]
    [InlineData("deit_distilled", "hf")]
    [InlineData("vit_no_qkv_bias_relu", "hf")]
    public void TimmToAnotherFormatAndBackIsTheSameFile(string name, string via)
    {
        var src = Sources[name];
        var ckpt = Checkpoint.Load(src.Path, src.Options);
        var f = CheckpointWriter.ParseFormat(via);
        var mid = Target(_tmp, name, f);
        CheckpointWriter.Write(ckpt, mid, f);
        var again = Path.Combine(_tmp, name + ".again.safetensors");
        CheckpointWriter.Write(Checkpoint.Load(mid, Stated(ckpt.Config, f)), again, CheckpointFormat.Timm);
        SameTensors(SafeTensors.Read(src.Path), SafeTensors.Read(again));
    }

    [Theory]
    [InlineData("vit_tiny48_npz")]
    public void NpzToTimmAndBackIsTheSameArchive(string name)
    {
        var src = Sources[name];
        var timm = Path.Combine(_tmp, "via.safetensors");
        CheckpointWriter.Write(Checkpoint.Load(src.Path), timm, CheckpointFormat.Timm);
        var npz = Path.Combine(_tmp, "again.npz");
        CheckpointWriter.Write(Checkpoint.Load(timm, new LoadOptions { Heads = 2 }), npz, CheckpointFormat.Npz);
        SameTensors(Npz.Read(src.Path), Npz.Read(npz));
    }

    /// <summary>A Hugging Face folder → timm → Hugging Face: every tensor transformers' model class holds comes back
    /// under its own name (the reference folders hold nothing else but DINOv2's unused mask token, which VitSharp
    /// writes as zeros).</summary>
    [Theory]
    [InlineData("vit_tiny48_hf")]
    [InlineData("hf_deit_teacher")]
    [InlineData("hf_dinov2")]
    [InlineData("hf_clip_vision")]
    [InlineData("hf_siglip_vision")]
    public void HuggingFaceToTimmAndBackIsTheSameFolder(string name)
    {
        var src = Sources[name];
        var ckpt = Checkpoint.Load(src.Path);
        var timm = Path.Combine(_tmp, "via.safetensors");
        CheckpointWriter.Write(ckpt, timm, CheckpointFormat.Timm);
        var hf = Path.Combine(_tmp, "again-hf");
        CheckpointWriter.Write(Checkpoint.Load(timm, Stated(ckpt.Config, CheckpointFormat.Timm)), hf, CheckpointFormat.HuggingFace);
        var original = SafeTensors.Read(Path.Combine(src.Path, "model.safetensors"));
        var written = SafeTensors.Read(Path.Combine(hf, "model.safetensors"));
        if (original.Remove("embeddings.mask_token", out _)) Assert.True(written.Remove("embeddings.mask_token", out var mask) && mask.Data.All(x => x == 0));
        SameTensors(original, written);
        var cfg = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(src.Path, "config.json")))!;
        var ours = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(hf, "config.json")))!;
        foreach (var key in new[] { "model_type", "hidden_size", "num_hidden_layers", "num_attention_heads", "image_size", "patch_size", "hidden_act", "architectures" })
            Assert.Equal(cfg[key]?.ToJsonString(), ours[key]?.ToJsonString());
        Assert.Equal((double)cfg["layer_norm_eps"]!, (double)ours["layer_norm_eps"]!, 1e-9);
    }

    /// <summary>The npz written from timm's vit_tiny48 is Google's own layout: the key set, shapes and values of the
    /// reference Google npz of the same weights.</summary>
    [Fact]
    public void NpzIsLaidOutAsGooglesReference() =>
        CheckAgainstGoogle(TestData.Small("vit_tiny48", "model.safetensors"), TestData.Small("vit_tiny48", "model_google.npz"), 2);

    [SharedTheory]
    [InlineData("vit_s16_d3", 3)]
    [InlineData("vit_p4_train", 4)]
    public void NpzIsLaidOutAsGooglesSharedReference(string folder, int heads) =>
        CheckAgainstGoogle(TestData.Shared("refs", folder, "model.safetensors"), TestData.Shared("refs", folder, "model_google.npz"), heads);

    private void CheckAgainstGoogle(string timm, string google, int heads)
    {
        var path = Path.Combine(_tmp, "ours.npz");
        CheckpointWriter.Write(Checkpoint.Load(timm, new LoadOptions { Heads = heads }), path, CheckpointFormat.Npz);
        var ours = Npz.Read(path);
        var theirs = Npz.Read(google);
        output.WriteLine($"{theirs.Count} arrays, e.g. query kernel {theirs["Transformer/encoderblock_0/MultiHeadDotProductAttention_1/query/kernel"]}");
        SameTensors(theirs, ours);
    }

    /// <summary>Variants no reference file has, built from vit_tiny48's weights: Google's gap model (no class token, norm
    /// before the mean), a pre-logits layer without a head (Google's ImageNet-21k shape, HF ViTModel's pooler), and
    /// attention without qkv biases (written as zero biases, which compute the same).</summary>
    [Theory]
    [InlineData("gap", "npz")]
    [InlineData("pre_logits", "npz")]
    [InlineData("pre_logits", "hf")]
    [InlineData("no_qkv_bias", "npz")]
    [InlineData("no_qkv_bias", "hf")]
    [InlineData("no_embed_class", "npz")]
    [InlineData("no_embed_class", "hf")]
    [InlineData("no_embed_class", "timm")]
    public void BuiltVariantsRoundTrip(string variant, string format)
    {
        var w = SafeTensors.Read(TestData.Small("vit_tiny48", "model.safetensors"));
        switch (variant)
        {
            case "gap":
                w.Remove("cls_token");
                var pos = w["pos_embed"];
                w["pos_embed"] = new HostArray([1, pos.Shape[1] - 1, 64], pos.Data[64..]);
                break;
            case "pre_logits":
                var rng = new Random(5);
                w.Remove("head.weight");
                w.Remove("head.bias");
                w["pre_logits.fc.weight"] = new HostArray([32, 64], Enumerable.Range(0, 32 * 64).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray());
                w["pre_logits.fc.bias"] = new HostArray([32], Enumerable.Range(0, 32).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray());
                break;
            case "no_embed_class": // a class token without a position row (timm's no_embed_class)
                var table = w["pos_embed"];
                w["pos_embed"] = new HostArray([1, table.Shape[1] - 1, 64], table.Data[64..]);
                break;
            default:
                for (int b = 0; b < 2; b++) w.Remove($"blocks.{b}.attn.qkv.bias");
                break;
        }
        var src = Path.Combine(_tmp, variant + ".safetensors");
        SafeTensors.Write(src, w);
        var ckpt = Checkpoint.Load(src, new LoadOptions { Heads = 2 });
        var c = (VitConfig)ckpt.Config;
        if (variant == "gap") Assert.Equal((Pooling.Avg, false, false), (c.Pool, c.FcNorm, c.ClassToken));
        if (variant == "pre_logits") Assert.Equal((32, 0), (c.RepresentationSize, c.NumClasses));
        if (variant == "no_embed_class") Assert.True(c.NoEmbedClass && c.ClassToken);
        var f = CheckpointWriter.ParseFormat(format);
        var path = Target(_tmp, variant, f);
        CheckpointWriter.Write(ckpt, path, f);
        var back = Checkpoint.Load(path, Stated(c, f));
        var input = Npy.Read(TestData.Small("vit_tiny48", "input.npy"));
        Assert.Equal(Outputs(ckpt, input).main, Outputs(back, input).main);
        if (variant == "no_qkv_bias")
        {
            // npz Dense modules always have a bias: zeros; transformers states qkv_bias false and keeps none.
            Assert.Equal(f == CheckpointFormat.Npz, ((VitConfig)back.Config).QkvBias);
            if (f == CheckpointFormat.Npz) Assert.All(back.Weights["blocks.0.attn.qkv.bias"].Data, x => Assert.Equal(0f, x));
            Assert.Equal(c with { QkvBias = ((VitConfig)back.Config).QkvBias }, back.Config);
        }
        else
        {
            // Google's and transformers' tables cover the class token: read back, its (zero) row is a position.
            Assert.Equal(variant == "no_embed_class" && f != CheckpointFormat.Timm ? c with { NoEmbedClass = false } : c, back.Config);
            SameTensors(ckpt.Weights, back.Weights);
        }
    }

    /// <summary>
    /// The files tests/tools/convert_check.py loads with timm, transformers and timm's npz loader (on a machine that has
    /// them: the GPU machine), written to $VITSHARP_CONVERT_CHECK_DIR: every timm family as timm safetensors, Hugging
    /// Face folders of DeiT, ViT, DINOv2 with registers, SigLIP and CLIP (the last three from the timm families, heads
    /// removed: those transformers models have none), the reference folders through timm and back, and Google npz files.
    /// Each is read back here too.
    /// </summary>
    [EnvFact(CheckDirVariable)]
    public void WritesTheLibraryCheckFiles()
    {
        var dir = Environment.GetEnvironmentVariable(CheckDirVariable)!;
        Directory.CreateDirectory(dir);
        var written = new List<string>();
        void Write(Checkpoint c, string name, CheckpointFormat f, LoadOptions? back = null)
        {
            var path = Path.Combine(dir, name);
            CheckpointWriter.Write(c, path, f);
            // Dinov2WithRegisters keeps a position row for the class token (zero, from timm's no_embed_class): read back,
            // the table covers the class token, which computes the same.
            var expected = f == CheckpointFormat.HuggingFace && c.Config is VitConfig { RegTokens: > 0 } v ? v with { NoEmbedClass = false } : c.Config;
            Assert.Equal(expected, Checkpoint.Load(path, back ?? Stated(c.Config, f)).Config);
            written.Add(name);
        }
        Checkpoint Load(string source) => Checkpoint.Load(Sources[source].Path, Sources[source].Options);
        Checkpoint Headless(Checkpoint c)
        {
            var w = new Dictionary<string, HostArray>(c.Weights);
            w.Remove("head.weight");
            w.Remove("head.bias");
            return c with { Config = (VitConfig)c.Config with { NumClasses = 0 }, Weights = w };
        }
        foreach (var n in new[] { "deit_distilled", "vit_reg4", "vit_layerscale_qknorm", "vit_clip_quickgelu", "vit_siglip_map", "vit_dinov2_reg", "vit_avg_nocls", "vit_no_qkv_bias_relu" })
            Write(Load(n), $"timm_{n}.safetensors", CheckpointFormat.Timm);
        Write(Load("vit_tiny48_npz"), "timm_vit_tiny48_from_npz.safetensors", CheckpointFormat.Timm);
        Write(Load("vit_tiny48_npz"), "hf_vit_tiny48_from_npz", CheckpointFormat.HuggingFace);
        Write(Load("vit_tiny48"), "npz_vit_tiny48.npz", CheckpointFormat.Npz);
        Write(Load("vit_tiny48_hf"), "npz_vit_tiny48_from_hf.npz", CheckpointFormat.Npz);
        Write(Load("mixer_tiny48"), "npz_mixer_tiny48.npz", CheckpointFormat.Npz);
        Write(Load("deit_distilled"), "hf_deit_distilled", CheckpointFormat.HuggingFace);
        Write(Load("vit_no_qkv_bias_relu"), "hf_vit_no_qkv_bias_relu", CheckpointFormat.HuggingFace);
        Write(Headless(Load("vit_dinov2_reg")), "hf_dinov2_reg_headless", CheckpointFormat.HuggingFace, new LoadOptions { DynamicImgSize = true });
        // vit_reg4 has no layer scale: DINOv2's layers get gammas of one, and layer_scale reads back true.
        var reg4 = Headless(Load("vit_reg4"));
        CheckpointWriter.Write(reg4, Path.Combine(dir, "hf_reg4_headless"), CheckpointFormat.HuggingFace);
        Assert.Equal((VitConfig)reg4.Config with { LayerScale = true, NoEmbedClass = false }, Checkpoint.Load(Path.Combine(dir, "hf_reg4_headless")).Config);
        Write(Headless(Load("vit_siglip_map")), "hf_siglip_map_headless", CheckpointFormat.HuggingFace);
        Write(Headless(Load("vit_clip_quickgelu")), "hf_clip_headless", CheckpointFormat.HuggingFace);
        foreach (var n in new[] { "hf_dinov2", "hf_clip_vision", "hf_siglip_vision", "hf_deit_teacher" })
        {
            var ckpt = Load(n);
            Write(ckpt, $"timm_{n}.safetensors", CheckpointFormat.Timm);
            Write(Checkpoint.Load(Path.Combine(dir, $"timm_{n}.safetensors"), Stated(ckpt.Config, CheckpointFormat.Timm)), $"hf_{n}_again", CheckpointFormat.HuggingFace);
        }
        output.WriteLine($"wrote {written.Count + 1} checkpoints to {dir}: {string.Join(", ", written)}");
    }

    private const string CheckDirVariable = "VITSHARP_CONVERT_CHECK_DIR";

    [Fact]
    public void UnexpressibleFamilyIsATypedOneLineErrorInTheCli()
    {
        var path = Path.Combine(_tmp, "deit.npz");
        var (code, _, stderr) = Cli.CliRunner.Run("convert", "-c", Sources["deit_distilled"].Path, "--heads", "2", "-o", path);
        Assert.Equal(1, code);
        Assert.Single(stderr.Trim().Split('\n'));
        Assert.Contains("npz format cannot express a distillation token", stderr);
        Assert.Contains(path, stderr);
        Assert.False(File.Exists(path));
    }

    [Fact]
    public void CliInfersTheFormatFromTheOutput()
    {
        var src = Sources["vit_tiny48"].Path;
        var hf = Path.Combine(_tmp, "folder");
        var (code, stdout, _) = Cli.CliRunner.Run("convert", "-c", src, "--heads", "2", "-o", hf);
        Assert.Equal(0, code);
        Assert.Contains("hf (huggingface vit)", stdout);
        Assert.True(File.Exists(Path.Combine(hf, "config.json")) && File.Exists(Path.Combine(hf, "model.safetensors")));
        var npz = Path.Combine(_tmp, "m.npz");
        Assert.Equal(0, Cli.CliRunner.Run("convert", "-c", hf, "-o", npz).code);
        Assert.True(Npz.LooksLike(npz));
        // From an npz to a .safetensors name: VitSharp's own format, its record stating the heads.
        var own = Path.Combine(_tmp, "own.safetensors");
        Assert.Equal(0, Cli.CliRunner.Run("convert", "-c", npz, "-o", own).code);
        Assert.Equal(2, ((VitConfig)Checkpoint.Load(own).Config).NumHeads);
        Assert.NotNull(Checkpoint.Load(own).Metadata);
        var timm = Path.Combine(_tmp, "t.safetensors");
        Assert.Equal(0, Cli.CliRunner.Run("convert", "-c", own, "-o", timm, "--format", "timm").code);
        Assert.DoesNotContain(ModelMetadata.MetadataKey, SafeTensors.ReadHeader(timm).metadata.Keys);
        Assert.Equal(0, Cli.CliRunner.Run("convert", "-c", own, "-o", timm, "--format", "timm", "--metadata").code);
        Assert.Contains(ModelMetadata.MetadataKey, SafeTensors.ReadHeader(timm).metadata.Keys);
        var (bad, _, err) = Cli.CliRunner.Run("convert", "-c", own, "-o", Path.Combine(_tmp, "x.bin"));
        Assert.Equal(1, bad);
        Assert.Contains("--format", err);
        Assert.Equal(1, Cli.CliRunner.Run("convert", "-c", own, "-o", npz, "--dtype", "bf16").code);
    }

    [Fact]
    public void FormatOfTheOutputName()
    {
        Assert.Equal(CheckpointFormat.Npz, CheckpointWriter.FormatOf("a/b.npz"));
        Assert.Equal(CheckpointFormat.VitSharp, CheckpointWriter.FormatOf("b.safetensors"));
        Assert.Equal(CheckpointFormat.HuggingFace, CheckpointWriter.FormatOf("out/vit-hf"));
        Assert.Equal(CheckpointFormat.HuggingFace, CheckpointWriter.FormatOf(_tmp));
        Assert.Null(CheckpointWriter.FormatOf("model.bin"));
        Assert.Throws<VitSharpException>(() => CheckpointWriter.ParseFormat("onnx"));
    }
}

/// <summary>A fact that runs only when an environment variable is set (it names where the test writes); skipped with
/// that reason otherwise.</summary>
public sealed class EnvFactAttribute : FactAttribute
{
    public EnvFactAttribute(string variable)
    {
        if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable(variable))) Skip = $"set {variable} to the folder to write into";
    }
}
