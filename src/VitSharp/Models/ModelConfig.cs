using System.Text.Json.Nodes;
using VitSharp.Backends;

namespace VitSharp.Models;

/// <summary>timm's global_pool: the class token, the mean or max of the patch tokens, or "map" (big_vision/SigLIP's
/// attention-pool head, timm's attn_pool: one learned query attends over every token), or "seq" (CCT's SeqPool, Hassani
/// et al. 2021: a softmax over every token of a learned score x·g + c weights the tokens' sum; attention_pool.weight/bias).</summary>
public enum Pooling { Token, Avg, Max, Map, Seq }

/// <summary>What every image model shares: input geometry, width, depth, head, norm eps and GELU variant.</summary>
public abstract record ModelConfig
{
    public int ImageSize { get; init; } = 224;
    public int PatchSize { get; init; } = 16;
    public int InChannels { get; init; } = 3;
    public int EmbedDim { get; init; } = 768;
    public int Depth { get; init; } = 12;
    /// <summary>0 = no head: the model returns pooled features.</summary>
    public int NumClasses { get; init; } = 1000;
    public float LayerNormEps { get; init; } = 1e-6f;
    /// <summary>The MLP activation (timm's act_layer): Gelu (exact erf, timm's and PyTorch's default), GeluTanh (Google's
    /// Flax code, SigLIP), QuickGelu (OpenAI CLIP), Relu or Silu.</summary>
    public Activation Gelu { get; init; } = Activation.Gelu;

    public int GridSize => ImageSize / PatchSize;
    public int NumPatches => GridSize * GridSize;
    public abstract string Architecture { get; }

    public virtual void Validate()
    {
        if (PatchSize <= 0 || ImageSize <= 0 || ImageSize % PatchSize != 0)
            throw new VitSharpException($"image size {ImageSize} is not a positive multiple of patch size {PatchSize}");
        if (EmbedDim <= 0 || Depth < 0 || NumClasses < 0 || InChannels <= 0)
            throw new VitSharpException($"invalid model dimensions (embed {EmbedDim}, depth {Depth}, classes {NumClasses})");
    }

    public virtual JsonObject ToJson() => new()
    {
        ["architecture"] = Architecture,
        ["img_size"] = ImageSize,
        ["patch_size"] = PatchSize,
        ["in_chans"] = InChannels,
        ["embed_dim"] = EmbedDim,
        ["depth"] = Depth,
        ["num_classes"] = NumClasses,
        ["layer_norm_eps"] = LayerNormEps,
        ["gelu"] = ActivationName(Gelu),
    };

    /// <summary>The name a config file uses for an activation (the first that <see cref="ParseActivation"/> reads).</summary>
    public static string ActivationName(Activation a) => a switch
    {
        Activation.GeluTanh => "tanh",
        Activation.QuickGelu => "quick_gelu",
        Activation.Relu => "relu",
        Activation.Silu => "silu",
        _ => "erf",
    };

    /// <summary>An activation by its timm, Hugging Face or config-file name; null for null.</summary>
    public static Activation? ParseActivation(string? s) => s switch
    {
        null => null,
        "erf" or "gelu" or "exact" => Activation.Gelu,
        "tanh" or "gelu_tanh" or "gelu_new" or "gelu_pytorch_tanh" or "gelu_fast" => Activation.GeluTanh,
        "quick_gelu" or "quickgelu" => Activation.QuickGelu,
        "relu" => Activation.Relu,
        "silu" or "swish" => Activation.Silu,
        _ => throw new VitSharpException($"unknown activation '{s}' (expected erf, tanh, quick_gelu, relu or silu)"),
    };
}

/// <summary>Vision Transformer (Dosovitskiy et al. 2020) with the options real checkpoints need, named as in timm.</summary>
public sealed record VitConfig : ModelConfig
{
    public int NumHeads { get; init; } = 12;
    /// <summary>timm's dim_head / vit-pytorch's dim_head: each head's width; 0 = embed_dim / num_heads. The attention's
    /// inner width (qkv, proj input) is num_heads · head_dim, which need not be the model width.</summary>
    public int DimHead { get; init; }
    public int MlpDim { get; init; } = 3072;
    public bool QkvBias { get; init; } = true;
    /// <summary>Bias on the attention's output projection (vit-pytorch's SimpleViT has none).</summary>
    public bool ProjBias { get; init; } = true;
    /// <summary>timm's qk_norm: LayerNorm over each head's features of q and k (attn.q_norm, attn.k_norm).</summary>
    public bool QkNorm { get; init; }
    /// <summary>timm's init_values ≠ None: per-channel gammas on each residual branch (ls1.gamma, ls2.gamma; DINOv2, DeiT III).</summary>
    public bool LayerScale { get; init; }
    /// <summary>timm's init_values: what a fresh model's layer-scale gammas start at (only <see cref="Initializer"/> reads it).</summary>
    public float InitValues { get; init; } = 1e-5f;
    public bool ClassToken { get; init; } = true;
    /// <summary>DeiT's distillation token (dist_token) and its head (head_dist); logits are the mean of both heads, as
    /// timm's VisionTransformerDistilled computes at inference.</summary>
    public bool DistToken { get; init; }
    /// <summary>timm's reg_tokens: learned register tokens after the class (and distillation) token.</summary>
    public int RegTokens { get; init; }
    /// <summary>timm's no_embed_class: the checkpoint's position embedding covers patches only. VitSharp pads it with zero
    /// rows for the prefix tokens at load time, which computes the same thing.</summary>
    public bool NoEmbedClass { get; init; }
    /// <summary>timm's pre_norm (OpenAI CLIP's ln_pre): a LayerNorm on the embedded tokens before the first block (norm_pre).</summary>
    public bool PreNorm { get; init; }
    /// <summary>timm's dynamic_img_size: any input size the patch divides runs, the position embedding resampled to its
    /// grid at run time (bicubic, antialiased, as timm) and cached per size.</summary>
    public bool DynamicImgSize { get; init; }
    /// <summary>vit-pytorch's patch embedding: a LayerNorm over each flattened patch's pixels before the projection
    /// (patch_embed.pixel_norm; stored in the convolution's (c, p1, p2) order).</summary>
    public bool PixelNorm { get; init; }
    /// <summary>A LayerNorm after the patch projection (timm's PatchEmbed norm: patch_embed.norm; vit-pytorch has it).</summary>
    public bool PatchEmbedNorm { get; init; }
    /// <summary>CCT's convolutional tokenizer (Hassani et al. 2021) instead of the patch projection: <c>Layers</c> ×
    /// [conv 3×3 (stride 1, padding 1, no bias) → ReLU → max pool 3×3 (stride 2, padding 1)], <c>Channels</c> wide except
    /// the last (embed_dim). Its total stride, 2^layers, is the patch size. Null: the patch projection.</summary>
    public ConvTokenizerConfig? ConvTokenizer { get; init; }
    public Pooling Pool { get; init; } = Pooling.Token;
    /// <summary>timm's placement for average (and max) pooling: no final norm, LayerNorm after pooling ("fc_norm").
    /// False puts the norm before pooling (Google's "gap" classifier, vit-pytorch's mean pooling).</summary>
    public bool FcNorm { get; init; }
    /// <summary>Optional pre-logits dense + tanh of this width (Google's ImageNet-21k checkpoints, HF ViTModel's pooler).</summary>
    public int RepresentationSize { get; init; }

    public override string Architecture => "vit";
    public int HeadDim => DimHead > 0 ? DimHead : EmbedDim / NumHeads;
    /// <summary>The attention's inner width: heads × head width.</summary>
    public int InnerDim => NumHeads * HeadDim;
    public int PrefixTokens => (ClassToken ? 1 : 0) + (DistToken ? 1 : 0) + RegTokens;
    public int NumTokens => NumPatches + PrefixTokens;
    public int FeatureDim => RepresentationSize > 0 ? RepresentationSize : EmbedDim;

    public override void Validate()
    {
        base.Validate();
        if (NumHeads <= 0 || DimHead < 0 || (DimHead == 0 && EmbedDim % NumHeads != 0))
            throw new VitSharpException($"embed dim {EmbedDim} is not divisible by {NumHeads} heads (pass --heads, or dim_head)");
        if (MlpDim <= 0) throw new VitSharpException($"MLP width {MlpDim} is not positive");
        if (RegTokens < 0) throw new VitSharpException($"reg_tokens {RegTokens} is negative");
        if (!ClassToken && Pool == Pooling.Token) throw new VitSharpException("token pooling needs a class token");
        if (DistToken && (!ClassToken || Pool != Pooling.Token || RepresentationSize > 0))
            throw new VitSharpException("a distillation token needs a class token, token pooling and no pre-logits");
        if (FcNorm && Pool == Pooling.Seq) throw new VitSharpException("fc_norm does not go with seq pooling (CCT's SeqPool follows the final norm)");
        if (FcNorm && Pool is not (Pooling.Avg or Pooling.Max)) throw new VitSharpException("fc_norm is only used with average or max pooling");
        if (ConvTokenizer is { } ct)
        {
            ct.Validate();
            if (PatchSize != ct.Stride)
                throw new VitSharpException($"conv_tokenizer: patch_size must be {ct.Stride} (2^layers, the tokenizer's total stride), not {PatchSize}");
            if (PixelNorm || PatchEmbedNorm) throw new VitSharpException("conv_tokenizer: pixel_norm and patch_embed_norm belong to the patch projection");
        }
        if (Pool == Pooling.Map && EmbedDim % NumHeads != 0)
            throw new VitSharpException($"the attention-pool head splits width {EmbedDim} over {NumHeads} heads: not divisible");
    }

    public override JsonObject ToJson()
    {
        var j = base.ToJson();
        j["num_heads"] = NumHeads;
        j["head_dim"] = HeadDim;
        j["dim_head"] = DimHead;
        j["mlp_dim"] = MlpDim;
        j["qkv_bias"] = QkvBias;
        j["proj_bias"] = ProjBias;
        j["qk_norm"] = QkNorm;
        j["layer_scale"] = LayerScale;
        j["init_values"] = InitValues;
        j["class_token"] = ClassToken;
        j["dist_token"] = DistToken;
        j["reg_tokens"] = RegTokens;
        j["no_embed_class"] = NoEmbedClass;
        j["pre_norm"] = PreNorm;
        j["dynamic_img_size"] = DynamicImgSize;
        j["pixel_norm"] = PixelNorm;
        j["patch_embed_norm"] = PatchEmbedNorm;
        j["global_pool"] = PoolName(Pool);
        j["fc_norm"] = FcNorm;
        j["representation_size"] = RepresentationSize;
        if (ConvTokenizer is { } ct) j["conv_tokenizer"] = ct.ToJson();
        return j;
    }

    public static string PoolName(Pooling p) => p switch { Pooling.Avg => "avg", Pooling.Max => "max", Pooling.Map => "map", Pooling.Seq => "seq", _ => "token" };

    public static Pooling? ParsePool(string? s) => s switch
    {
        null => null,
        "token" or "cls" => Pooling.Token,
        "avg" or "mean" => Pooling.Avg,
        "max" => Pooling.Max,
        "map" => Pooling.Map,
        "seq" => Pooling.Seq,
        _ => throw new VitSharpException($"unknown global_pool '{s}' (expected token, avg, max, map or seq)"),
    };
}

/// <summary>CCT's convolutional tokenizer: <see cref="Layers"/> 3×3 convolutions (kernel fixed at 3, stride 1, padding
/// 1, no bias), each followed by ReLU and a 3×3 max pool of stride 2 (padding 1); <see cref="Channels"/> wide (CCT's
/// in_planes) except the last layer, which is embed_dim wide. Config: <c>"conv_tokenizer": {"layers": 2, "channels": 64}</c>.</summary>
public sealed record ConvTokenizerConfig
{
    public int Layers { get; init; } = 2;
    public int Channels { get; init; } = 64;

    /// <summary>The keys of its JSON object.</summary>
    public static readonly string[] Keys = ["layers", "channels"];

    /// <summary>The total stride (each layer's pool halves the map): 2^layers, the model's patch size.</summary>
    public int Stride => 1 << Layers;

    public void Validate()
    {
        if (Layers is < 1 or > 6) throw new VitSharpException($"conv_tokenizer: layers must be 1 to 6, not {Layers}");
        if (Channels < 1) throw new VitSharpException($"conv_tokenizer: channels must be positive, not {Channels}");
    }

    /// <summary>Layer i's (out, in) channels for a model of width <paramref name="dim"/> on <paramref name="inChans"/> channels.</summary>
    public (int Out, int In) LayerChannels(int i, int inChans, int dim) => (i == Layers - 1 ? dim : Channels, i == 0 ? inChans : Channels);

    public JsonObject ToJson() => new() { ["layers"] = Layers, ["channels"] = Channels };
}

/// <summary>MLP-Mixer (Tolstikhin et al. 2021): the attention-free sibling; token mixing and channel mixing MLPs.</summary>
public sealed record MixerConfig : ModelConfig
{
    public int TokenMlpDim { get; init; } = 384;
    public int ChannelMlpDim { get; init; } = 3072;
    public override string Architecture => "mixer";

    public override JsonObject ToJson()
    {
        var j = base.ToJson();
        j["token_mlp_dim"] = TokenMlpDim;
        j["channel_mlp_dim"] = ChannelMlpDim;
        return j;
    }
}
