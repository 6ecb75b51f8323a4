namespace VitSharp.Models;

/// <summary>
/// Named configurations with timm's names, as a table: the paper's Ti/S/B/L/H widths × patch 8/14/16/32 × 224/384
/// where timm defines them, DeiT (with distillation), DeiT III, DINOv2 (with registers) and CLIP image towers at timm's
/// arguments, and Mixer S/B/L at patch 16/32.
/// </summary>
public static class Presets
{
    private record Size(string Name, int Dim, int Depth, int Heads);

    private static readonly Size[] VitSizes =
    [
        new("tiny", 192, 12, 3), new("small", 384, 12, 6), new("base", 768, 12, 12),
        new("large", 1024, 24, 16), new("huge", 1280, 32, 16),
    ];

    // (size, patch, image sizes) that timm registers for the original ViT family.
    private static readonly (string Size, int Patch, int[] Images)[] VitGrid =
    [
        ("tiny", 16, [224, 384]),
        ("small", 32, [224, 384]), ("small", 16, [224, 384]), ("small", 8, [224]),
        ("base", 32, [224, 384]), ("base", 16, [224, 384]), ("base", 8, [224]),
        ("large", 32, [224, 384]), ("large", 16, [224, 384]), ("large", 14, [224]),
        ("huge", 14, [224]),
    ];

    private static readonly (string Size, int Dim, int Depth)[] MixerSizes = [("s", 512, 8), ("b", 768, 12), ("l", 1024, 24)];

    public static IReadOnlyDictionary<string, ModelConfig> All { get; } = Build();

    public static ModelConfig Get(string name) =>
        All.TryGetValue(name, out var c) ? c
            : throw new VitSharpException($"unknown model '{name}'; known: {string.Join(", ", All.Keys)}");

    private static Dictionary<string, ModelConfig> Build()
    {
        var d = new Dictionary<string, ModelConfig>();
        foreach (var (sizeName, patch, images) in VitGrid)
        {
            var s = VitSizes.Single(v => v.Name == sizeName);
            foreach (var img in images)
                d[$"vit_{sizeName}_patch{patch}_{img}"] = new VitConfig
                {
                    ImageSize = img, PatchSize = patch, EmbedDim = s.Dim, Depth = s.Depth, NumHeads = s.Heads, MlpDim = 4 * s.Dim,
                };
        }
        // The families built on the same class (timm's names and constructor arguments).
        foreach (var sizeName in new[] { "tiny", "small", "base" })
        {
            var plain = (VitConfig)d[$"vit_{sizeName}_patch16_224"];
            d[$"deit_{sizeName}_patch16_224"] = plain;
            d[$"deit_{sizeName}_distilled_patch16_224"] = plain with { DistToken = true };
        }
        foreach (var sizeName in new[] { "small", "base", "large" })
        {
            var s = VitSizes.Single(v => v.Name == sizeName);
            var vit = new VitConfig { EmbedDim = s.Dim, Depth = s.Depth, NumHeads = s.Heads, MlpDim = 4 * s.Dim };
            d[$"deit3_{sizeName}_patch16_224"] = vit with { ImageSize = 224, PatchSize = 16, LayerScale = true, InitValues = 1e-6f };
            d[$"vit_{sizeName}_patch14_dinov2"] = vit with { ImageSize = 518, PatchSize = 14, LayerScale = true, InitValues = 1e-5f };
            d[$"vit_{sizeName}_patch14_reg4_dinov2"] = vit with { ImageSize = 518, PatchSize = 14, LayerScale = true, InitValues = 1e-5f, RegTokens = 4 };
        }
        foreach (var (sizeName, patch) in new[] { ("base", 32), ("base", 16), ("large", 14) })
        {
            var s = VitSizes.Single(v => v.Name == sizeName);
            var clip = new VitConfig
            {
                ImageSize = 224, PatchSize = patch, EmbedDim = s.Dim, Depth = s.Depth, NumHeads = s.Heads, MlpDim = 4 * s.Dim,
                PreNorm = true, LayerNormEps = 1e-5f,
            };
            d[$"vit_{sizeName}_patch{patch}_clip_224"] = clip;
            d[$"vit_{sizeName}_patch{patch}_clip_quickgelu_224"] = clip with { Gelu = Backends.Activation.QuickGelu };
        }
        foreach (var (sizeName, dim, depth) in MixerSizes)
            foreach (var patch in new[] { 16, 32 })
                d[$"mixer_{sizeName}{patch}_224"] = new MixerConfig
                {
                    ImageSize = 224, PatchSize = patch, EmbedDim = dim, Depth = depth,
                    TokenMlpDim = dim / 2, ChannelMlpDim = 4 * dim,
                };
        return d;
    }
}
