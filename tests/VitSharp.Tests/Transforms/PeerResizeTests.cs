using VitSharp.Data;
using VitSharp.Data.Codecs;
using VitSharp.Data.Transforms;
using VitSharp.Tests.Codecs;
using Xunit.Abstractions;

namespace VitSharp.Tests.Transforms;

/// <summary>
/// Resize, crop and normalise against references computed by Pillow 12.3, torchvision 0.26, timm 1.0.29 and
/// transformers 5.17 (bench/peers/make_resize_refs.py; versions in Data/images/refs/versions.json).
/// Pillow's integer resize is reproduced exactly, so 8-bit outputs must be equal and float outputs equal up to float rounding.
/// </summary>
public class PeerResizeTests(ITestOutputHelper log)
{
    static readonly string RefDir = Path.Combine(TestEnv.DataDir, "refs");
    static readonly DecodeOptions NoExif = new() { ApplyExifOrientation = false };

    static Image Small() => ImageCodecs.Decode(Path.Combine(TestEnv.DataDir, "chelsea_crop128x96.png"));
    static Image Photo(string file) => ImageCodecs.Decode(Path.Combine(TestEnv.SharedDir!, "images", file), NoExif).ToRgb();

    [Fact]
    public void PilResizeMatchesPillowExactlyOnCommittedCrop() => CheckPilResizes(Small(), "small");

    [Fact]
    public void RecipesMatchTimmAndHuggingFaceOnCommittedCrop() => CheckRecipes(Small(), "small");

    [NeedsFact(true)]
    public void PhotosMatchPeers()
    {
        CheckPilResizes(Photo("chelsea.png"), "chelsea");
        CheckRecipes(Photo("chelsea.png"), "chelsea");
        CheckPilResizes(Photo("rocket.jpg"), "rocket");
        CheckRecipes(Photo("rocket.jpg"), "rocket");
        var camera = ImageCodecs.Decode(Path.Combine(TestEnv.SharedDir!, "images", "camera.png"));
        Assert.Equal(1, camera.Channels);
        CheckPilResizes(camera, "camera");
    }

    void CheckPilResizes(Image img, string refName)
    {
        var refs = NpyArray.ReadNpz(Path.Combine(RefDir, refName + ".npz"));
        int n = 0;
        foreach (var (key, arr) in refs)
        {
            var parts = key.Split('_');
            if (parts.Length != 2 || parts[0] is not ("bicubic" or "bilinear")) continue;
            var size = parts[1].Split('x').Select(int.Parse).ToArray();
            var interp = parts[0] == "bicubic" ? Interpolation.Bicubic : Interpolation.Bilinear;
            var ours = Resize.Pil(img, size[0], size[1], interp);
            var d = Diff.Of(ours.Pixels, arr.U8);
            log.WriteLine($"{refName} {key}: {d}");
            Assert.Equal(0, d.Different);
            n++;
        }
        if (refName == "timm224") return;
        if (refs.TryGetValue("timm224_u8", out var timm))
        {
            var (w, h) = Resize.ShorterSideSize(img.Width, img.Height, 256);
            var ours = CenterCrop.Apply(Resize.Pil(img, w, h, Interpolation.Bicubic), 224, 224);
            var d = Diff.Of(ours.Pixels, timm.U8);
            log.WriteLine($"{refName} timm resize 256 + centre crop 224 (uint8): {d}");
            Assert.Equal(0, d.Different);
            n++;
        }
        Assert.True(n > 0, "no resize references found");
    }

    void CheckRecipes(Image img, string refName)
    {
        var refs = NpyArray.ReadNpz(Path.Combine(RefDir, refName + ".npz"));
        var timm = PreprocessRecipe.Timm(224, 0.875).Apply(img);
        AssertClose(Slice(timm, 224, 96, 100, 32), refs["timm224_f32_slice"].F32!, 1e-6f, $"{refName} timm 224 crop_pct 0.875 bicubic");
        if (refs.TryGetValue("timm96_cp09_bilinear_f32", out var t96))
            AssertClose(PreprocessRecipe.Timm(96, 0.9, Interpolation.Bilinear).Apply(img), t96.F32!, 1e-6f, $"{refName} timm 96 crop_pct 0.9 bilinear");
        var hf = PreprocessRecipe.HuggingFace(224).Apply(img);
        // transformers 5 has only the torchvision-based ViTImageProcessor (use_fast=False is ignored): it resizes uint8
        // tensors with torch's antialiased kernel, whose int16 weights round differently from Pillow's 22-bit ones, so it
        // lands within one 8-bit step (2/255 after 0.5/0.5 normalisation) of Pillow — which our HF recipe reproduces.
        AssertClose(Slice(hf, 224, 96, 100, 32), refs["hf224_f32_slice"].F32!, 2f / 255 + 1e-6f, $"{refName} HF ViTImageProcessor");
        AssertClose(Slice(hf, 224, 96, 100, 32), refs["hffast224_f32_slice"].F32!, 2f / 255 + 1e-6f, $"{refName} HF fast processor (torchvision)");
        // Google: tf.image.resize bilinear without antialias, checked on the 0–255 scale before normalisation.
        var g = refs["google_up_f32"];
        int gh = img.Height + 13, gw = img.Width + 7;
        var ours = Resize.BilinearNoAntialias(img, gw, gh);
        var sampled = new List<float>();
        for (int y = 0; y < gh; y += 7) for (int x = 0; x < gw; x += 7) for (int c = 0; c < 3; c++) sampled.Add(ours[(y * gw + x) * 3 + c]);
        AssertClose(sampled.ToArray(), g.F32!, 1e-3f, $"{refName} bilinear without antialias (tf.image.resize)");
    }

    static float[] Slice(float[] chw, int size, int top, int left, int n)
    {
        var o = new float[3 * n * n];
        for (int c = 0; c < 3; c++) for (int y = 0; y < n; y++) for (int x = 0; x < n; x++)
            o[(c * n + y) * n + x] = chw[(c * size + top + y) * size + left + x];
        return o;
    }

    void AssertClose(float[] ours, float[] theirs, float tol, string what)
    {
        Assert.Equal(theirs.Length, ours.Length);
        float max = 0; int off = 0;
        for (int i = 0; i < ours.Length; i++) { float d = Math.Abs(ours[i] - theirs[i]); max = Math.Max(max, d); if (d > 1e-5f) off++; }
        log.WriteLine($"{what}: max |diff| {max:G3}, {off} of {ours.Length} values differ by more than 1e-5");
        Assert.True(max <= tol, $"{what}: max |diff| {max} > {tol}");
    }
}
