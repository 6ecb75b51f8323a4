using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using VitSharp.Backends;
using VitSharp.Data.Transforms;
using VitSharp.Inference;
using VitSharp.Models;

namespace VitSharp.Checkpoints;

/// <summary>The checkpoint formats VitSharp writes (<see cref="CheckpointWriter"/>, <c>vit convert</c>).</summary>
public enum CheckpointFormat
{
    /// <summary>timm's safetensors: timm's names and layout, no metadata unless asked for.</summary>
    Timm,
    /// <summary>VitSharp's own: timm's names with the <see cref="ModelMetadata"/> record (config, preprocessing, labels).</summary>
    VitSharp,
    /// <summary>Google vision_transformer's .npz (plain ViT and MLP-Mixer).</summary>
    Npz,
    /// <summary>A Hugging Face transformers folder: config.json, model.safetensors (and preprocessor_config.json).</summary>
    HuggingFace,
}

/// <summary>What a write produced; <see cref="Notes"/> say what the format does not record (and how to state it when
/// loading).</summary>
public sealed record ConversionResult(string Path, CheckpointFormat Format, string? Family, int Tensors, long Values, string DType,
    IReadOnlyList<string> Notes);

/// <summary>
/// Writes a loaded model (timm-named weights + configuration) in any format VitSharp reads: timm safetensors, VitSharp's
/// own safetensors, Google npz (<see cref="GoogleNames.FromTimm"/>) or a Hugging Face folder
/// (<see cref="HuggingFaceNames.FromTimm"/>). A model the target cannot express is refused before anything is written,
/// with a <see cref="ConversionException"/> naming every missing feature. Every file is written atomically.
/// </summary>
public static class CheckpointWriter
{
    public static CheckpointFormat ParseFormat(string name) => name.ToLowerInvariant() switch
    {
        "timm" => CheckpointFormat.Timm,
        "vitsharp" => CheckpointFormat.VitSharp,
        "npz" or "google" => CheckpointFormat.Npz,
        "hf" or "huggingface" => CheckpointFormat.HuggingFace,
        _ => throw new VitSharpException($"unknown checkpoint format '{name}' (expected timm, vitsharp, npz or hf)"),
    };

    public static string FormatName(CheckpointFormat f) => f switch
    {
        CheckpointFormat.Timm => "timm",
        CheckpointFormat.VitSharp => "vitsharp",
        CheckpointFormat.Npz => "npz",
        _ => "hf",
    };

    /// <summary>The format an output path implies: .npz → npz, .safetensors → vitsharp, a folder (existing, ending in a
    /// separator, or a name without extension) → hf; null when it says nothing (another extension).</summary>
    public static CheckpointFormat? FormatOf(string output)
    {
        if (output.EndsWith(".npz", StringComparison.OrdinalIgnoreCase)) return CheckpointFormat.Npz;
        if (output.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase)) return CheckpointFormat.VitSharp;
        if (Directory.Exists(output) || output.EndsWith('/') || output.EndsWith(System.IO.Path.DirectorySeparatorChar)
            || System.IO.Path.GetExtension(output.TrimEnd('/')) == "") return CheckpointFormat.HuggingFace;
        return null;
    }

    /// <summary>"bf16", "f16"/"fp16", "f32"/"fp32" → the safetensors dtype name.</summary>
    public static string ParseDType(string name) => name.ToLowerInvariant() switch
    {
        "bf16" => "BF16",
        "f16" or "fp16" => "F16",
        "f32" or "fp32" => "F32",
        var d => throw new VitSharpException($"--dtype must be bf16, f16 or f32, not '{d}'"),
    };

    /// <summary>Rewrites a safetensors file in another float type, names and metadata untouched (bf16 rounds to nearest even).</summary>
    public static ConversionResult RewriteDType(string input, string output, string dtype)
    {
        if (!File.Exists(input)) throw new VitSharpException($"{input}: file not found");
        if (!SafeTensors.LooksLike(input)) throw new VitSharpException($"{input}: not a safetensors file (a dtype rewrite reads safetensors only; pass --format to convert another format)");
        var tensors = SafeTensors.Read(input, out var meta);
        SafeTensors.Write(output, tensors, meta, dtype);
        return new ConversionResult(output, CheckpointFormat.Timm, null, tensors.Count, tensors.Values.Sum(t => t.Count), dtype, []);
    }

    /// <summary>Writes <paramref name="ckpt"/> as <paramref name="format"/> at <paramref name="output"/> (a folder for
    /// <see cref="CheckpointFormat.HuggingFace"/>). <paramref name="dtype"/> is F32, BF16 or F16 (npz: F32 only).
    /// <paramref name="metadata"/>: the record VitSharp's format carries (default: <see cref="Recipes.Resolve"/>);
    /// <paramref name="timmMetadata"/> adds it to a timm file too.</summary>
    public static ConversionResult Write(Checkpoint ckpt, string output, CheckpointFormat format, string dtype = "F32",
        ModelMetadata? metadata = null, bool timmMetadata = false)
    {
        if (dtype is not ("F32" or "BF16" or "F16")) throw new VitSharpException($"cannot write dtype {dtype} (F32, BF16 or F16)");
        var notes = new List<string>();
        switch (format)
        {
            case CheckpointFormat.Timm:
            case CheckpointFormat.VitSharp:
            {
                var w = TimmTensors(ckpt, output, strictTimm: format == CheckpointFormat.Timm);
                bool record = format == CheckpointFormat.VitSharp || timmMetadata;
                var md = record ? (metadata ?? Recipes.Resolve(ckpt)) : null;
                if (md is not null)
                    SafeTensors.Write(output, w, (md with { Preprocess = md.Preprocess ?? PreprocessRecipe.Timm(md.Config.ImageSize) }).ToSafeTensorsMetadata(), dtype);
                else
                {
                    SafeTensors.Write(output, w, null, dtype);
                    notes.AddRange(TimmNotes(ckpt.Config));
                    if (ckpt.Labels is not null) notes.Add("class names are not kept (timm safetensors have no place for them)");
                }
                return new ConversionResult(output, format, format == CheckpointFormat.Timm ? "timm" : "vitsharp", w.Count, w.Values.Sum(t => t.Count), dtype, notes);
            }
            case CheckpointFormat.Npz:
            {
                if (dtype != "F32") throw new VitSharpException($"{output}: a Google npz is written in float32 (--dtype f32), not {dtype}");
                // Google's position table always covers the class token: VitSharp's padded table (a zero row for a
                // no_embed_class model's class token) is that layout.
                var g = GoogleNames.FromTimm(ckpt.Weights, ckpt.Config, output);
                Npz.Write(output, g);
                if (ckpt.Config.LayerNormEps != 1e-6f)
                    notes.Add($"LayerNorm eps {Show(ckpt.Config.LayerNormEps)} is not kept (npz readers assume 1e-6): pass --layer-norm-eps {Show(ckpt.Config.LayerNormEps)} when loading");
                if (ckpt.Config.Gelu == Activation.GeluTanh)
                    notes.Add("the activation is not kept: Google's code runs tanh GELU, as this model, but VitSharp and timm read an npz with exact GELU: pass --gelu tanh when loading");
                if (ckpt.Labels is not null) notes.Add("class names and preprocessing are not kept (an npz holds arrays only)");
                return new ConversionResult(output, format, ckpt.Config is MixerConfig ? "google mixer" : "google vit", g.Count, g.Values.Sum(t => t.Count), dtype, notes);
            }
            default:
                return WriteHuggingFace(ckpt, output, dtype, notes);
        }
    }

    /// <summary>
    /// The weights in timm's own layout: a no_embed_class position table loses the zero rows VitSharp padded for the
    /// prefix tokens. <paramref name="strictTimm"/>: also what timm's VisionTransformer builds — no patch-projection
    /// bias under pre_norm (timm: bias=not pre_norm), and a VitSharp-only feature (vit-pytorch's pixel LayerNorm) refused.
    /// </summary>
    public static Dictionary<string, HostArray> TimmTensors(Checkpoint ckpt, string output, bool strictTimm)
    {
        var w = new Dictionary<string, HostArray>(ckpt.Weights);
        if (ckpt.Config is not VitConfig v) return w;
        if (v.NoEmbedClass && v.PrefixTokens > 0 && w.TryGetValue("pos_embed", out var pos))
        {
            int d = pos.Shape[2], k = v.PrefixTokens;
            if (!pos.Data.AsSpan(0, k * d).ContainsAnyExcept(0f))
                w["pos_embed"] = new HostArray([1, pos.Shape[1] - k, d], pos.Data[(k * d)..]);
        }
        if (!strictTimm) return w;
        if (v.PixelNorm)
            throw new ConversionException(output, "timm", ["vit-pytorch's pixel LayerNorm before the patch projection (write --format vitsharp)"]);
        if (v.ConvTokenizer is not null)
            throw new ConversionException(output, "timm", ["CCT's convolutional tokenizer (timm's VisionTransformer has only a patch projection; write --format vitsharp)"]);
        if (v.Pool == Pooling.Seq)
            throw new ConversionException(output, "timm", ["CCT's sequence pooling (attention_pool; timm's VisionTransformer has no such head; write --format vitsharp)"]);
        if (v.PreNorm && w.TryGetValue("patch_embed.proj.bias", out var b))
        {
            if (b.Data.AsSpan().ContainsAnyExcept(0f))
                throw new ConversionException(output, "timm", ["a patch-projection bias beside pre_norm (timm's pre_norm model has none; write --format vitsharp)"]);
            w.Remove("patch_embed.proj.bias");
        }
        return w;
    }

    /// <summary>What a timm file without metadata does not say, where the defaults its readers assume would be wrong.</summary>
    private static IEnumerable<string> TimmNotes(ModelConfig c)
    {
        if (c is VitConfig v && (v.InnerDim % 64 != 0 || v.InnerDim / 64 != v.NumHeads))
            yield return $"the head count is not kept: pass --heads {v.NumHeads} when loading";
        if (c.LayerNormEps != 1e-6f) yield return $"LayerNorm eps {Show(c.LayerNormEps)} is not kept (readers assume 1e-6): pass --layer-norm-eps {Show(c.LayerNormEps)} when loading";
        if (c.Gelu != Activation.Gelu) yield return $"the activation is not kept: pass --gelu {ModelConfig.ActivationName(c.Gelu)} when loading";
        if (c is VitConfig { DynamicImgSize: true }) yield return "dynamic_img_size is not kept: pass --dynamic-img-size when loading";
    }

    // ---- Hugging Face -------------------------------------------------------------------------------------------

    /// <summary>The transformers model a ViT configuration is, or the features none of them has.</summary>
    private sealed record HfTarget(string ModelType, string Family, string Prefix, string Architecture);

    private static HfTarget ChooseHuggingFace(VitConfig v, string output)
    {
        var why = new List<string>();
        if (v.QkNorm) why.Add("qk_norm");
        if (v.PixelNorm) why.Add("vit-pytorch's pixel LayerNorm before the patch projection");
        if (v.PatchEmbedNorm) why.Add("a LayerNorm after the patch projection");
        if (v.ConvTokenizer is not null) why.Add("CCT's convolutional tokenizer (no patch projection)");
        if (v.InnerDim != v.EmbedDim) why.Add($"an attention {v.InnerDim} wide in a {v.EmbedDim}-wide model (dim_head)");
        if (v.Pool == Pooling.Seq) why.Add("CCT's sequence pooling (attention_pool)");
        if (v.Pool is Pooling.Avg or Pooling.Max) why.Add($"{VitConfig.PoolName(v.Pool)} pooling (the transformers vision models pool the class token or, SigLIP, attend)");
        HfTarget target;
        if (v.PreNorm)
        {
            target = new("clip_vision_model", "clip", "", "CLIPVisionModel");
            if (!v.ClassToken || v.Pool != Pooling.Token) why.Add("a pre-norm model without class-token pooling (CLIP pools its class token)");
        }
        // transformers 5 saves the vision towers' tensors without the "vision_model." prefix (refs-families' folders).
        else if (v.Pool == Pooling.Map) target = new("siglip_vision_model", "clip", "", "SiglipVisionModel");
        else if (v.DistToken)
            target = new("deit", "deit", v.NumClasses > 0 ? "deit." : "", v.NumClasses > 0 ? "DeiTForImageClassificationWithTeacher" : "DeiTModel");
        else if (v.LayerScale || v.RegTokens > 0)
            target = v.RegTokens > 0 ? new("dinov2_with_registers", "dinov2", "", "Dinov2WithRegistersModel") : new("dinov2", "dinov2", "", "Dinov2Model");
        else target = new("vit", "vit", v.NumClasses > 0 ? "vit." : "", v.NumClasses > 0 ? "ViTForImageClassification" : "ViTModel");
        string name = target.Architecture;
        if (target.Family is "clip" or "dinov2" && v.NumClasses > 0)
            why.Add($"a classifier head on {name} (it has none: write the model without its head, or --format vitsharp)");
        if (target.Family is "clip")
        {
            if (v.ClassToken && target.ModelType == "siglip_vision_model") why.Add("a class token beside SigLIP's attention-pool head");
            if (v.LayerScale) why.Add($"layer scale in {name}");
            if (v.RegTokens > 0) why.Add($"register tokens in {name}");
            if (v.DistToken) why.Add($"a distillation token in {name}");
        }
        if (target.Family is "dinov2" && v.DistToken) why.Add("a distillation token beside layer scale or registers");
        if (v.RepresentationSize > 0 && (target.Family != "vit" || v.NumClasses > 0))
            why.Add("a pre-logits layer beside a classifier (ViTForImageClassification has no pooler)");
        if (why.Count > 0) throw new ConversionException(output, "hf", why);
        return target;
    }

    private static string HfActivation(Activation a) => a switch
    {
        Activation.GeluTanh => "gelu_pytorch_tanh",
        Activation.QuickGelu => "quick_gelu",
        Activation.Relu => "relu",
        Activation.Silu => "silu",
        _ => "gelu",
    };

    private static ConversionResult WriteHuggingFace(Checkpoint ckpt, string output, string dtype, List<string> notes)
    {
        if (File.Exists(output)) throw new VitSharpException($"{output}: a Hugging Face model is a folder, and this is a file");
        if (ckpt.Config is not VitConfig v) throw new ConversionException(output, "hf", ["an MLP-Mixer (transformers has no MLP-Mixer model)"]);
        var t = ChooseHuggingFace(v, output);
        var w = new Dictionary<string, HostArray>(ckpt.Weights);
        HostArray Zeros(int n) => new([n], new float[n]);
        int d = v.EmbedDim;
        // Biases a transformers module always has: zeros where timm's has none compute the same.
        for (int i = 0; i < v.Depth; i++)
        {
            if (!w.ContainsKey($"blocks.{i}.attn.proj.bias")) w[$"blocks.{i}.attn.proj.bias"] = Zeros(d);
            if (t.Family == "clip" && !w.ContainsKey($"blocks.{i}.attn.qkv.bias")) w[$"blocks.{i}.attn.qkv.bias"] = Zeros(3 * d);
            // DINOv2 layers always scale their branches: gammas of one are the same function.
            if (t.Family == "dinov2" && !v.LayerScale)
            {
                w[$"blocks.{i}.ls1.gamma"] = new HostArray([d], Enumerable.Repeat(1f, d).ToArray());
                w[$"blocks.{i}.ls2.gamma"] = new HostArray([d], Enumerable.Repeat(1f, d).ToArray());
            }
        }
        if (t.ModelType == "clip_vision_model" && w.Remove("patch_embed.proj.bias", out var pb) && pb.Data.AsSpan().ContainsAnyExcept(0f))
            throw new ConversionException(output, "hf", ["a patch-projection bias (CLIP's patch embedding has none)"]);
        var hf = HuggingFaceNames.FromTimm(w, t.Family, t.Prefix, output);

        string[]? labels = ckpt.Labels;
        var config = new JsonObject
        {
            ["architectures"] = new JsonArray(t.Architecture),
            ["model_type"] = t.ModelType,
            ["hidden_size"] = d,
            ["num_hidden_layers"] = v.Depth,
            ["num_attention_heads"] = v.NumHeads,
            ["num_channels"] = v.InChannels,
            ["image_size"] = v.ImageSize,
            ["patch_size"] = v.PatchSize,
            ["hidden_act"] = HfActivation(v.Gelu),
            ["layer_norm_eps"] = Num(v.LayerNormEps),
            ["initializer_range"] = 0.02,
        };
        if (t.Family == "dinov2")
        {
            double ratio = (double)v.MlpDim / d;
            if ((int)(d * ratio) != v.MlpDim) throw new ConversionException(output, "hf", [$"an MLP {v.MlpDim} wide that DINOv2's mlp_ratio cannot state"]);
            config["mlp_ratio"] = ratio;
            config["layerscale_value"] = Num(v.InitValues);
            config["use_swiglu_ffn"] = false;
            config["qkv_bias"] = v.QkvBias;
            config["hidden_dropout_prob"] = 0.0;
            config["attention_probs_dropout_prob"] = 0.0;
            config["drop_path_rate"] = 0.0;
            if (v.RegTokens > 0) config["num_register_tokens"] = v.RegTokens;
        }
        else if (t.Family == "clip")
        {
            config["intermediate_size"] = v.MlpDim;
            config["attention_dropout"] = 0.0;
            if (t.ModelType == "clip_vision_model") config["projection_dim"] = d;
        }
        else
        {
            config["intermediate_size"] = v.MlpDim;
            config["qkv_bias"] = v.QkvBias;
            config["hidden_dropout_prob"] = 0.0;
            config["attention_probs_dropout_prob"] = 0.0;
            config["encoder_stride"] = v.PatchSize;
            if (v.RepresentationSize > 0)
            {
                config["pooler_output_size"] = v.RepresentationSize;
                config["pooler_act"] = "tanh";
            }
        }
        if (v.NumClasses > 0)
        {
            var names = labels ?? Enumerable.Range(0, v.NumClasses).Select(i => $"LABEL_{i}").ToArray();
            var id2label = new JsonObject();
            var label2id = new JsonObject();
            for (int i = 0; i < names.Length; i++)
            {
                id2label[i.ToString(CultureInfo.InvariantCulture)] = names[i];
                label2id[names[i]] = i;
            }
            config["id2label"] = id2label;
            config["label2id"] = label2id;
        }
        else if (labels is not null) notes.Add("class names are not kept (the model has no classifier head)");
        config["torch_dtype"] = dtype switch { "BF16" => "bfloat16", "F16" => "float16", _ => "float32" };
        if (v.DynamicImgSize) notes.Add("dynamic_img_size is not kept (transformers interpolates positions when asked: interpolate_pos_encoding)");

        Directory.CreateDirectory(output);
        SafeTensors.Write(System.IO.Path.Combine(output, "model.safetensors"), hf, new Dictionary<string, string> { ["format"] = "pt" }, dtype);
        var recipe = ckpt.Metadata?.Preprocess ?? Recipes.For(ckpt);
        if (recipe.Resize == ResizeMode.Square && recipe.Antialias && recipe.SourceSize <= 0)
            WriteJson(System.IO.Path.Combine(output, "preprocessor_config.json"), new JsonObject
            {
                ["image_processor_type"] = "ViTImageProcessor",
                ["do_resize"] = true,
                ["size"] = new JsonObject { ["height"] = v.ImageSize, ["width"] = v.ImageSize },
                ["resample"] = recipe.Interpolation == Interpolation.Bicubic ? 3 : 2,
                ["do_rescale"] = true,
                ["rescale_factor"] = 1 / 255.0,
                ["do_normalize"] = true,
                ["image_mean"] = new JsonArray([.. recipe.Mean.Select(x => (JsonNode)Num(x))]),
                ["image_std"] = new JsonArray([.. recipe.Std.Select(x => (JsonNode)Num(x))]),
            });
        else
        {
            var what = recipe.Resize != ResizeMode.Square ? "a resize then a centre crop"
                : recipe.SourceSize > 0 ? $"a resize to {recipe.SourceSize}² then to {recipe.ImageSize}²" : "a resize without antialias";
            notes.Add($"no preprocessor_config.json: the '{recipe.Name}' preprocessing ({what}) is not what ViTImageProcessor does");
            // One left from an earlier write would state another model's preprocessing.
            var stale = System.IO.Path.Combine(output, "preprocessor_config.json");
            if (File.Exists(stale))
            {
                File.Delete(stale);
                notes.Add("removed the folder's earlier preprocessor_config.json");
            }
        }
        if (t.Architecture is "ViTModel" or "DeiTModel" && v.RepresentationSize == 0)
            notes.Add($"{t.Architecture}'s pooler is not in the file (VitSharp's model has none): transformers initialises it at random, so use last_hidden_state, not pooler_output");
        WriteJson(System.IO.Path.Combine(output, "config.json"), config); // last: a folder without it is not a model
        return new ConversionResult(output, CheckpointFormat.HuggingFace, $"huggingface {t.ModelType}", hf.Count, hf.Values.Sum(a => a.Count), dtype, notes);
    }

    private static void WriteJson(string path, JsonObject o)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(o.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        AtomicFile.Write(path, s => s.Write(bytes));
    }

    /// <summary>A float as the shortest decimal that reads back as the same float (1e-6f → 1E-06, not 9.99999997e-07).</summary>
    private static string Show(float x) => x.ToString("R", CultureInfo.InvariantCulture).ToLowerInvariant();

    private static double Num(float x) => double.Parse(x.ToString("R", CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
}
