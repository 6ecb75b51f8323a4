using VitSharp.Backends;
using VitSharp.Backends.Cpu;
using VitSharp.Checkpoints;
using VitSharp.Models;
using Xunit.Abstractions;

namespace VitSharp.Tests.Models;

/// <summary>
/// The ViT families beyond plain ViT (refs-families, committed under Data/): each checkpoint in its library's own form,
/// loaded with its configuration inferred, against the logits and features timm, transformers or vit-pytorch computed.
/// </summary>
public class FamilyParityTests(ITestOutputHelper output)
{
    private const float Tol = 1e-4f;

    public static string Dir(string name) => Path.Combine(AppContext.BaseDirectory, "Data", "refs-families", name);

    private static HostArray Ref(string name, string file) => Npy.Read(Path.Combine(Dir(name), file + ".npy"));

    private float Check(string what, HostArray actual, HostArray expected)
    {
        float diff = TestData.MaxAbsDiff(actual, expected);
        output.WriteLine($"{what}: max |Δ| = {diff:G3}");
        Assert.InRange(diff, 0, Tol);
        return diff;
    }

    /// <summary>What the timm checkpoints' weights cannot say (it is in meta.json's constructor arguments).</summary>
    public static IEnumerable<object[]> TimmCases =>
    [
        ["deit_distilled", null!, null!],
        ["vit_reg4", null!, null!],
        ["vit_layerscale_qknorm", null!, null!],
        ["vit_clip_quickgelu", "quick_gelu", 1e-5f],
        ["vit_siglip_map", "tanh", null!],
        ["vit_dinov2_reg", null!, null!],
        ["vit_avg_nocls", null!, null!],
        ["vit_no_qkv_bias_relu", "relu", null!],
    ];

    [Theory]
    [MemberData(nameof(TimmCases))]
    public void TimmFamilyMatches(string name, string? act, float? eps)
    {
        var ckpt = Checkpoint.Load(Path.Combine(Dir(name), "model.safetensors"),
            new LoadOptions { Heads = 2, Gelu = ModelConfig.ParseActivation(act), LayerNormEps = eps, DynamicImgSize = name == "vit_dinov2_reg" ? true : null });
        using var model = ckpt.CreateModel(CpuBackend.Instance);
        var input = Ref(name, "input");
        Check(name + " logits", model.Run(input), Ref(name, "logits"));
        Check(name + " features", model.Run(input, OutputKind.Tokens), Ref(name, "features"));
        model.PrepareForInference(); // pre-packed weights (what Classifier.Load uses) compute the same
        Check(name + " logits, pre-packed", model.Run(input), Ref(name, "logits"));
    }

    /// <summary>A timm hub folder: config.json's architecture name and model_args say what the weights cannot (CLIP's
    /// LayerNorm eps 1e-5 and QuickGELU, the head count).</summary>
    [Fact]
    public void TimmFolderConfigCompletesTheKeys()
    {
        const string name = "vit_clip_quickgelu";
        var dir = Directory.CreateTempSubdirectory("vitsharp-timm-folder-").FullName;
        try
        {
            File.Copy(Path.Combine(Dir(name), "model.safetensors"), Path.Combine(dir, "model.safetensors"));
            File.WriteAllText(Path.Combine(dir, "config.json"),
                """{ "architecture": "vit_base_patch16_clip_quickgelu_224.openai", "num_classes": 5, "model_args": { "num_heads": 2 } }""");
            var ckpt = Checkpoint.Load(dir);
            var c = (VitConfig)ckpt.Config;
            Assert.Equal((Activation.QuickGelu, 1e-5f, true), (c.Gelu, c.LayerNormEps, c.PreNorm));
            using var model = ckpt.CreateModel(CpuBackend.Instance);
            Check("timm folder", model.Run(Ref(name, "input")), Ref(name, "logits"));
            File.WriteAllText(Path.Combine(dir, "config.json"), """{ "architecture": "vit_x", "model_args": { "num_heads": 2, "global_pool": "avgmax" } }""");
            var e = Assert.Throws<CheckpointException>(() => Checkpoint.Load(dir));
            Assert.Contains("avgmax", e.Message);
            Assert.Contains(dir, e.Message);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void TimmConfigsAreInferredFromTheKeys()
    {
        VitConfig Load(string name) => (VitConfig)Checkpoint.Load(Path.Combine(Dir(name), "model.safetensors"), new LoadOptions { Heads = 2 }).Config;
        var deit = Load("deit_distilled");
        Assert.True(deit.DistToken);
        Assert.Equal(2, deit.PrefixTokens);
        var reg = Load("vit_reg4");
        Assert.Equal((4, true, 21), (reg.RegTokens, reg.NoEmbedClass, reg.NumTokens));
        var ls = Load("vit_layerscale_qknorm");
        Assert.True(ls.LayerScale && ls.QkNorm);
        var clip = Load("vit_clip_quickgelu");
        Assert.True(clip.PreNorm);
        var siglip = Load("vit_siglip_map");
        Assert.Equal((Pooling.Map, false), (siglip.Pool, siglip.ClassToken));
        var avg = Load("vit_avg_nocls");
        Assert.Equal((Pooling.Avg, true, false), (avg.Pool, avg.FcNorm, avg.ClassToken));
        var relu = Load("vit_no_qkv_bias_relu");
        Assert.Equal((false, 144), (relu.QkvBias, relu.MlpDim));
    }

    /// <summary>VitSharp's own format keeps every option: saved and read back, the configuration is the same and so are
    /// the outputs (no --heads, --gelu or --dynamic-img-size needed any more).</summary>
    [Theory]
    [InlineData("vit_dinov2_reg", "model.safetensors", null)]
    [InlineData("vit_clip_quickgelu", "model.safetensors", "quick_gelu")]
    [InlineData("deit_distilled", "model.safetensors", null)]
    [InlineData("lucid_vit", "model.pt", null)]
    public void OwnFormatRoundTripsTheOptions(string name, string file, string? act)
    {
        var ckpt = Checkpoint.Load(Path.Combine(Dir(name), file), new LoadOptions
        {
            Heads = name == "lucid_vit" ? 4 : 2, Gelu = ModelConfig.ParseActivation(act), LayerNormEps = act is null ? null : 1e-5f,
            DynamicImgSize = name == "vit_dinov2_reg" ? true : null,
        });
        var dir = Directory.CreateTempSubdirectory("vitsharp-own-").FullName;
        try
        {
            var path = Path.Combine(dir, "own.safetensors");
            Checkpoint.Save(path, ckpt.Config, ckpt.Weights);
            var back = Checkpoint.Load(path);
            // no_embed_class describes the file read: the weights VitSharp holds (and saves) carry the zero rows it padded.
            Assert.Equal((VitConfig)ckpt.Config with { NoEmbedClass = false }, back.Config);
            using var model = back.CreateModel(CpuBackend.Instance);
            Check(name + " after round trip", model.Run(Ref(name, "input")), Ref(name, "logits"));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void DinoV2RegistersRunAtALargerSizeWithResampledPositions()
    {
        const string name = "vit_dinov2_reg";
        var ckpt = Checkpoint.Load(Path.Combine(Dir(name), "model.safetensors"), new LoadOptions { Heads = 2, DynamicImgSize = true });
        using var model = ckpt.CreateModel(CpuBackend.Instance);
        Check("native", model.Run(Ref(name, "input")), Ref(name, "logits"));
        Check("48×48", model.Run(Ref(name, "input_larger")), Ref(name, "logits_at_larger"));
        // Cached per size: the second run at the larger size reads the same resampled embedding.
        Check("48×48 again", model.Run(Ref(name, "input_larger")), Ref(name, "logits_at_larger"));
        Check("native again", model.Run(Ref(name, "input")), Ref(name, "logits"));
    }

    [Fact]
    public void WithoutDynamicImgSizeAnotherSizeIsRefused()
    {
        const string name = "vit_dinov2_reg";
        using var model = Checkpoint.Load(Path.Combine(Dir(name), "model.safetensors"), new LoadOptions { Heads = 2 }).CreateModel(CpuBackend.Instance);
        var e = Assert.Throws<InputException>(() => model.Run(Ref(name, "input_larger")));
        Assert.Contains("--img-size", e.Message);
    }

    [Fact]
    public void HuggingFaceDeitWithTeacherMatches()
    {
        const string name = "hf_deit_teacher";
        var ckpt = Checkpoint.Load(Dir(name));
        var c = (VitConfig)ckpt.Config;
        Assert.Equal((true, 2, 1e-12f), (c.DistToken, c.NumHeads, c.LayerNormEps));
        using var model = ckpt.CreateModel(CpuBackend.Instance);
        Check(name + " logits", model.Run(Ref(name, "input")), Ref(name, "logits"));
    }

    [Fact]
    public void HuggingFaceDinoV2Matches()
    {
        const string name = "hf_dinov2";
        var ckpt = Checkpoint.Load(Dir(name));
        Assert.True(((VitConfig)ckpt.Config).LayerScale);
        using var model = ckpt.CreateModel(CpuBackend.Instance);
        var input = Ref(name, "input");
        Check(name + " last_hidden_state", model.Run(input, OutputKind.Tokens), Ref(name, "last_hidden_state"));
        Check(name + " pooler_output", model.Run(input, OutputKind.Pooled), Ref(name, "pooler_output"));
    }

    /// <summary>
    /// transformers' Dinov2WithRegisters layout (registers after the class token, no position rows for them). No
    /// transformers output is stored for it, so timm's vit_dinov2_reg weights are written in that layout (the class
    /// token's position row zero, as no_embed_class means) and must give timm's outputs back.
    /// </summary>
    [Fact]
    public void HuggingFaceDinoV2WithRegistersLayoutMatchesTimm()
    {
        const string name = "vit_dinov2_reg";
        var w = SafeTensors.Read(Path.Combine(Dir(name), "model.safetensors"));
        var o = new Dictionary<string, HostArray>
        {
            ["embeddings.cls_token"] = w["cls_token"],
            ["embeddings.register_tokens"] = w["reg_token"],
            ["embeddings.mask_token"] = new HostArray([1, 48], new float[48]),
            ["embeddings.patch_embeddings.projection.weight"] = w["patch_embed.proj.weight"],
            ["embeddings.patch_embeddings.projection.bias"] = w["patch_embed.proj.bias"],
            ["embeddings.position_embeddings"] = HostArray.Concat0(new HostArray([1, 48], new float[48]), w["pos_embed"].Reshape(16, 48)).Reshape(1, 17, 48),
            ["layernorm.weight"] = w["norm.weight"], ["layernorm.bias"] = w["norm.bias"],
        };
        for (int b = 0; b < 2; b++)
        {
            var l = $"encoder.layer.{b}";
            foreach (var leaf in new[] { "weight", "bias" })
            {
                o[$"{l}.norm1.{leaf}"] = w[$"blocks.{b}.norm1.{leaf}"];
                o[$"{l}.norm2.{leaf}"] = w[$"blocks.{b}.norm2.{leaf}"];
                o[$"{l}.mlp.fc1.{leaf}"] = w[$"blocks.{b}.mlp.fc1.{leaf}"];
                o[$"{l}.mlp.fc2.{leaf}"] = w[$"blocks.{b}.mlp.fc2.{leaf}"];
                o[$"{l}.attention.output.dense.{leaf}"] = w[$"blocks.{b}.attn.proj.{leaf}"];
                var qkv = w[$"blocks.{b}.attn.qkv.{leaf}"];
                int part = qkv.Data.Length / 3;
                foreach (var (k, i) in new[] { ("query", 0), ("key", 1), ("value", 2) })
                    o[$"{l}.attention.attention.{k}.{leaf}"] = new HostArray(leaf == "weight" ? [48, 48] : [48], qkv.Data[(i * part)..((i + 1) * part)]);
            }
            o[$"{l}.layer_scale1.lambda1"] = w[$"blocks.{b}.ls1.gamma"];
            o[$"{l}.layer_scale2.lambda1"] = w[$"blocks.{b}.ls2.gamma"];
        }
        var dir = Directory.CreateTempSubdirectory("vitsharp-dinoreg-").FullName;
        try
        {
            SafeTensors.Write(Path.Combine(dir, "model.safetensors"), o);
            File.WriteAllText(Path.Combine(dir, "config.json"), """
                { "model_type": "dinov2_with_registers", "hidden_size": 48, "num_hidden_layers": 2, "num_attention_heads": 2,
                  "patch_size": 8, "image_size": 32, "layer_norm_eps": 1e-6, "hidden_act": "gelu", "num_register_tokens": 4 }
                """);
            var ckpt = Checkpoint.Load(dir);
            Assert.Equal(4, ((VitConfig)ckpt.Config).RegTokens);
            using var model = ckpt.CreateModel(CpuBackend.Instance);
            Check("dinov2_with_registers tokens", model.Run(Ref(name, "input"), OutputKind.Tokens), Ref(name, "features"));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void HuggingFaceSiglipVisionMatches()
    {
        const string name = "hf_siglip_vision";
        var ckpt = Checkpoint.Load(Dir(name));
        var c = (VitConfig)ckpt.Config;
        Assert.Equal((Pooling.Map, Activation.GeluTanh, false), (c.Pool, c.Gelu, c.ClassToken));
        using var model = ckpt.CreateModel(CpuBackend.Instance);
        var input = Ref(name, "input");
        Check(name + " last_hidden_state", model.Run(input, OutputKind.Tokens), Ref(name, "last_hidden_state"));
        Check(name + " pooler_output", model.Run(input, OutputKind.Pooled), Ref(name, "pooler_output"));
    }

    [Fact]
    public void HuggingFaceClipVisionMatches()
    {
        const string name = "hf_clip_vision";
        var ckpt = Checkpoint.Load(Dir(name));
        var c = (VitConfig)ckpt.Config;
        Assert.Equal((true, Activation.QuickGelu, 1e-5f), (c.PreNorm, c.Gelu, c.LayerNormEps));
        using var model = ckpt.CreateModel(CpuBackend.Instance);
        var input = Ref(name, "input");
        Check(name + " pooler_output", model.Run(input, OutputKind.Pooled), Ref(name, "pooler_output"));
        // CLIP's last_hidden_state is the encoder's output before post_layernorm; VitSharp's tokens are after the final
        // norm (timm's forward_features), so the reference goes through that norm (its own weights) first.
        var hidden = Ref(name, "last_hidden_state");
        Check(name + " post_layernorm(last_hidden_state)", model.Run(input, OutputKind.Tokens),
            LayerNorm(hidden, ckpt.Weights["norm.weight"].Data, ckpt.Weights["norm.bias"].Data, c.LayerNormEps));
    }

    /// <summary>vit-pytorch state dicts (torch.save, read by the safe pickle reader) through the shipped name maps.</summary>
    [Theory]
    [InlineData("lucid_vit", 4, "vit-pytorch ViT")]
    [InlineData("lucid_vit_mean", 2, "vit-pytorch ViT")]
    [InlineData("lucid_simple_vit", 2, "vit-pytorch SimpleViT")]
    public void VitPytorchStateDictMatches(string name, int heads, string family)
    {
        var ckpt = Checkpoint.Load(Path.Combine(Dir(name), "model.pt"), new LoadOptions { Heads = heads, ImageSize = 32 });
        Assert.Equal(family, ckpt.Family);
        var c = (VitConfig)ckpt.Config;
        Assert.True(c.PixelNorm && c.PatchEmbedNorm);
        Assert.Equal(1e-5f, c.LayerNormEps);
        using var model = ckpt.CreateModel(CpuBackend.Instance);
        Check(name + " logits", model.Run(Ref(name, "input")), Ref(name, "logits"));
        model.PrepareForInference(); // the patch Linear is a view of the packed convolution weight
        Check(name + " logits, pre-packed", model.Run(Ref(name, "input")), Ref(name, "logits"));
    }

    [Fact]
    public void HeadWidthAloneFixesTheHeadCount()
    {
        var c = (VitConfig)Checkpoint.Load(Path.Combine(Dir("lucid_vit_mean"), "model.pt"), new LoadOptions { DimHead = 24 }).Config;
        Assert.Equal((2, 24, 0), (c.NumHeads, c.HeadDim, c.DimHead));
        var e = Assert.Throws<CheckpointException>(() => Checkpoint.Load(Path.Combine(Dir("lucid_vit"), "model.pt"), new LoadOptions { Heads = 4, DimHead = 24 }));
        Assert.Contains("4 heads × dim_head 24", e.Message);
        Assert.Contains("model.pt", e.Message);
    }

    /// <summary>
    /// vit-pytorch's older PreNorm generation (PreNorm(dim, fn) wrappers, a plain Linear over (p1 p2 c) patches,
    /// mlp_head = LayerNorm + Linear). No package output is stored for it, so timm's vit_tiny48 weights are written in
    /// that layout (the convolution flattened to (p1 p2 c) columns) and must give timm's logits back through the
    /// shipped map — the map's names and its rearrangement, checked against timm's arithmetic (eps set to timm's 1e-6).
    /// </summary>
    [Fact]
    public void VitPytorchPreNormGenerationLoadsThroughItsMap()
    {
        var w = SafeTensors.Read(TestData.Small("vit_tiny48", "model.safetensors"));
        var o = new Dictionary<string, HostArray>
        {
            ["cls_token"] = w["cls_token"],
            ["pos_embedding"] = w["pos_embed"],
            ["to_patch_embedding.1.bias"] = w["patch_embed.proj.bias"],
            ["mlp_head.0.weight"] = w["norm.weight"], ["mlp_head.0.bias"] = w["norm.bias"],
            ["mlp_head.1.weight"] = w["head.weight"], ["mlp_head.1.bias"] = w["head.bias"],
        };
        var conv = w["patch_embed.proj.weight"]; // (D, C, P, P) → (D, P·P·C) with columns in (p1 p2 c) order
        int d = conv.Shape[0], c = conv.Shape[1], p = conv.Shape[2];
        var lin = new float[conv.Data.Length];
        for (int i = 0; i < d; i++)
            for (int ch = 0; ch < c; ch++)
                for (int y = 0; y < p; y++)
                    for (int x = 0; x < p; x++)
                        lin[i * c * p * p + (y * p + x) * c + ch] = conv.Data[((i * c + ch) * p + y) * p + x];
        o["to_patch_embedding.1.weight"] = new HostArray([d, c * p * p], lin);
        for (int b = 0; w.ContainsKey($"blocks.{b}.norm1.weight"); b++)
            foreach (var (from, to) in new[] { ("norm1", "0.norm"), ("attn.qkv", "0.fn.to_qkv"), ("attn.proj", "0.fn.to_out.0"),
                ("norm2", "1.norm"), ("mlp.fc1", "1.fn.net.0"), ("mlp.fc2", "1.fn.net.3") })
                foreach (var leaf in new[] { "weight", "bias" })
                    o[$"transformer.layers.{b}.{to}.{leaf}"] = w[$"blocks.{b}.{from}.{leaf}"];
        var dir = Directory.CreateTempSubdirectory("vitsharp-prenorm-").FullName;
        try
        {
            var path = Path.Combine(dir, "prenorm.safetensors");
            SafeTensors.Write(path, o);
            var ckpt = Checkpoint.Load(path, new LoadOptions { Heads = 2, LayerNormEps = 1e-6f });
            Assert.Equal("vit-pytorch ViT (PreNorm generation)", ckpt.Family);
            using var model = ckpt.CreateModel(CpuBackend.Instance);
            Check("PreNorm generation", model.Run(Npy.Read(TestData.Small("vit_tiny48", "input.npy"))), Npy.Read(TestData.Small("vit_tiny48", "logits.npy")));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void VitPytorchInnerWidthIsNotTheModelWidth()
    {
        var c = (VitConfig)Checkpoint.Load(Path.Combine(Dir("lucid_vit"), "model.pt"), new LoadOptions { Heads = 4 }).Config;
        Assert.Equal((48, 4, 16, 64, false), (c.EmbedDim, c.NumHeads, c.HeadDim, c.InnerDim, c.QkvBias));
        // Without --heads the map's default head width (vit-pytorch's dim_head = 64) decides: one head of 64.
        var d = (VitConfig)Checkpoint.Load(Path.Combine(Dir("lucid_vit"), "model.pt")).Config;
        Assert.Equal((1, 64), (d.NumHeads, d.HeadDim));
    }

    [Fact]
    public void SimpleVitNeedsTheImageSize()
    {
        var e = Assert.Throws<CheckpointException>(() => Checkpoint.Load(Path.Combine(Dir("lucid_simple_vit"), "model.pt"), new LoadOptions { Heads = 2 }));
        Assert.Contains("--img-size", e.Message);
    }

    /// <summary>A whole CLIPModel folder (both towers, visual_projection): the image tower loads, the text tower is
    /// skipped unread, and the logits are the image embeddings, visual_projection(pooler_output).</summary>
    [Fact]
    public void WholeClipModelLoadsItsImageTower()
    {
        const string name = "hf_clip_vision";
        var w = SafeTensors.Read(Path.Combine(Dir(name), "model.safetensors")).ToDictionary(kv => "vision_model." + kv.Key, kv => kv.Value);
        var rng = new Random(7);
        var proj = new HostArray([8, 48], Enumerable.Range(0, 8 * 48).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray());
        w["visual_projection.weight"] = proj;
        w["text_model.embeddings.token_embedding.weight"] = new HostArray([10, 16], new float[160]);
        w["text_projection.weight"] = new HostArray([8, 16], new float[128]);
        w["logit_scale"] = new HostArray([], [2.6592f]);
        var dir = Directory.CreateTempSubdirectory("vitsharp-clip-").FullName;
        try
        {
            SafeTensors.Write(Path.Combine(dir, "model.safetensors"), w);
            var vision = File.ReadAllText(Path.Combine(Dir(name), "config.json"));
            File.WriteAllText(Path.Combine(dir, "config.json"), $$"""{ "model_type": "clip", "projection_dim": 8, "vision_config": {{vision}}, "text_config": {} }""");
            var ckpt = Checkpoint.Load(dir);
            Assert.Equal(8, ckpt.Config.NumClasses);
            using var model = ckpt.CreateModel(CpuBackend.Instance);
            var pooled = Ref(name, "pooler_output");
            var expected = new float[2 * 8];
            for (int b = 0; b < 2; b++)
                for (int j = 0; j < 8; j++)
                {
                    double acc = 0;
                    for (int i = 0; i < 48; i++) acc += (double)pooled.Data[b * 48 + i] * proj.Data[j * 48 + i];
                    expected[b * 8 + j] = (float)acc;
                }
            Check("CLIP image embeddings", model.Run(Ref(name, "input")), new HostArray([2, 8], expected));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    private static HostArray LayerNorm(HostArray x, float[] g, float[] b, float eps)
    {
        int d = g.Length;
        var o = new float[x.Data.Length];
        for (int r = 0; r < o.Length / d; r++)
        {
            double mean = 0, var = 0;
            for (int i = 0; i < d; i++) mean += x.Data[r * d + i];
            mean /= d;
            for (int i = 0; i < d; i++) var += Math.Pow(x.Data[r * d + i] - mean, 2);
            double rstd = 1 / Math.Sqrt(var / d + eps);
            for (int i = 0; i < d; i++) o[r * d + i] = (float)((x.Data[r * d + i] - mean) * rstd * g[i] + b[i]);
        }
        return new HostArray(x.Shape, o);
    }
}
