using System.Text.Json.Nodes;
using VitSharp.Backends;

namespace VitSharp.Models;

public enum Pooling { Token, Avg }

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
    /// <summary>GELU or GeluTanh (Google's Flax default; timm and PyTorch use exact erf GELU).</summary>
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
        ["gelu"] = Gelu == Activation.GeluTanh ? "tanh" : "erf",
    };
}

/// <summary>Vision Transformer (Dosovitskiy et al. 2020) with the options real checkpoints need, named as in timm.</summary>
public sealed record VitConfig : ModelConfig
{
    public int NumHeads { get; init; } = 12;
    public int MlpDim { get; init; } = 3072;
    public bool QkvBias { get; init; } = true;
    public bool ClassToken { get; init; } = true;
    /// <summary>timm's no_embed_class: the checkpoint's position embedding covers patches only. VitSharp pads it with a
    /// zero row for the class token at load time, which computes the same thing.</summary>
    public bool NoEmbedClass { get; init; }
    public Pooling Pool { get; init; } = Pooling.Token;
    /// <summary>timm's placement for average pooling: no final norm, LayerNorm after pooling ("fc_norm").
    /// False puts the norm before pooling (Google's "gap" classifier).</summary>
    public bool FcNorm { get; init; }
    /// <summary>Optional pre-logits dense + tanh of this width (Google's ImageNet-21k checkpoints, HF ViTModel's pooler).</summary>
    public int RepresentationSize { get; init; }

    public override string Architecture => "vit";
    public int HeadDim => EmbedDim / NumHeads;
    public int PrefixTokens => ClassToken ? 1 : 0;
    public int NumTokens => NumPatches + PrefixTokens;
    public int FeatureDim => RepresentationSize > 0 ? RepresentationSize : EmbedDim;

    public override void Validate()
    {
        base.Validate();
        if (NumHeads <= 0 || EmbedDim % NumHeads != 0)
            throw new VitSharpException($"embed dim {EmbedDim} is not divisible by {NumHeads} heads (pass --heads)");
        if (!ClassToken && Pool == Pooling.Token) throw new VitSharpException("token pooling needs a class token");
        if (FcNorm && Pool != Pooling.Avg) throw new VitSharpException("fc_norm is only used with average pooling");
    }

    public override JsonObject ToJson()
    {
        var j = base.ToJson();
        j["num_heads"] = NumHeads;
        j["head_dim"] = HeadDim;
        j["mlp_dim"] = MlpDim;
        j["qkv_bias"] = QkvBias;
        j["class_token"] = ClassToken;
        j["no_embed_class"] = NoEmbedClass;
        j["global_pool"] = Pool == Pooling.Avg ? "avg" : "token";
        j["fc_norm"] = FcNorm;
        j["representation_size"] = RepresentationSize;
        return j;
    }
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
