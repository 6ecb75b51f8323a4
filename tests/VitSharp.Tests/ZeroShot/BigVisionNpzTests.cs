using System.Text.Json.Nodes;
using VitSharp.Backends;
using VitSharp.Checkpoints;
using VitSharp.Data.Codecs;
using VitSharp.Inference;
using VitSharp.Models;
using VitSharp.Tests.Cli;

namespace VitSharp.Tests.ZeroShot;

/// <summary>
/// big_vision two-tower .npz: the committed HF siglip_tiny folder's weights written in big_vision's layout by
/// <see cref="BigVisionNpz"/> (transformers' conversion script inverted, not our GoogleNames), loaded back by
/// <see cref="ZeroShotModel.Load"/>, must give transformers' reference embeddings and logits and what the folder gives.
/// </summary>
[Collection("cli")]
public sealed class BigVisionNpzTests
{
    private static string D(params string[] p) => Path.Combine([ZeroShotRefsFactAttribute.Dir, .. p]);
    private static string Spiece => D("siglip_tiny", "spiece.model");
    private const int Heads = 2; // siglip_tiny's config.json, both towers

    private static Dictionary<string, HostArray> Hf() => SafeTensors.Read(D("siglip_tiny", "model.safetensors"));

    private static string Write(string name, Func<Dictionary<string, HostArray>, Dictionary<string, HostArray>>? edit = null,
        string prefix = "params/", bool scanned = false)
    {
        var bv = BigVisionNpz.FromHf(Hf(), Heads, Heads, prefix, scanned);
        if (edit is not null) bv = edit(bv);
        var path = Path.Combine(TinyTwoTower.TempDir("bv-" + name), "webli_tiny.npz");
        Npz.Write(path, bv);
        return path;
    }

    private static void Close(HostArray want, HostArray got, float tol, string what)
    {
        Assert.Equal(want.Shape, got.Shape);
        for (int i = 0; i < want.Data.Length; i++)
            Assert.True(Math.Abs(want.Data[i] - got.Data[i]) <= tol * Math.Max(1, Math.Abs(want.Data[i])),
                $"{what}[{i}]: VitSharp {got.Data[i]}, transformers {want.Data[i]}");
    }

    private static string[] Texts() => ((JsonObject)JsonNode.Parse(File.ReadAllText(D("refs.json")))!)["texts"]!.AsArray().Select(x => (string)x!).ToArray();

    [ZeroShotRefsFact]
    public void Npz_embeddings_and_logits_equal_transformers()
    {
        var path = Write("refs");
        var r = SafeTensors.Read(D("siglip_refs.safetensors"));
        var refs = (JsonObject)JsonNode.Parse(File.ReadAllText(D("refs.json")))!;
        using var m = ZeroShotModel.Load(path, new ZeroShotOptions { SentencePiece = Spiece });
        Assert.Equal("siglip", m.Family);
        Assert.True(m.Sigmoid);
        // What the shapes say: two heads per tower (the per-head kernels), 64 text positions, a MAP head.
        Assert.Equal(Heads, m.Text.Config.Heads);
        Assert.Equal(64, m.Text.Config.ContextLength);
        Assert.Equal(400, m.Text.Config.VocabSize);
        var vc = Assert.IsType<VitConfig>(m.Image.Model.Config);
        Assert.Equal((Pooling.Map, Heads, 32, 8, Activation.GeluTanh), (vc.Pool, vc.NumHeads, vc.ImageSize, vc.PatchSize, vc.Gelu));
        Assert.Equal("google", m.Image.Recipe.Name);
        var texts = Texts();
        var ids = refs["siglip_input_ids"]!.AsArray().Select(a => a!.AsArray().Select(x => (int)x!).ToArray()).ToArray();
        for (int i = 0; i < texts.Length; i++) Assert.Equal(ids[i], m.Tokenizer.Encode(texts[i]));
        var text = m.EmbedTexts(texts);
        Close(r["text_embeds"], text, 1e-4f, "npz text_embeds");
        var image = m.EmbedPixels(r["pixel_values"]);
        Close(r["image_embeds"], image, 1e-4f, "npz image_embeds");
        Close(r["logits_per_image"], m.Logits(image, text), 1e-4f, "npz logits_per_image");
        Assert.Equal((float)refs["siglip_logit_scale"]!, m.LogitScale, 5);
        Assert.Equal(Hf()["logit_bias"].Data[0], m.LogitBias);
    }

    [Theory]
    [InlineData("params/", false)]
    [InlineData("", false)]
    [InlineData("params/", true)]
    public void Npz_computes_what_the_folder_computes(string prefix, bool scanned)
    {
        var path = Write("same" + prefix.Length + scanned, prefix: prefix, scanned: scanned);
        using var npz = ZeroShotModel.Load(path, new ZeroShotOptions { SentencePiece = Spiece });
        using var folder = ZeroShotModel.Load(D("siglip_tiny"));
        var texts = Texts();
        var pixels = SafeTensors.Read(D("siglip_refs.safetensors"))["pixel_values"];
        // The same weights, activation, eps, fused q/k/v order and tokenizer: the same floats.
        Assert.Equal(folder.EmbedTexts(texts).Data, npz.EmbedTexts(texts).Data);
        Assert.Equal(folder.EmbedPixels(pixels).Data, npz.EmbedPixels(pixels).Data);
        Assert.Equal((folder.LogitScale, folder.LogitBias), (npz.LogitScale, npz.LogitBias));
        Assert.Equal(folder.Text.Config with { EndOfTextId = 0 }, npz.Text.Config with { EndOfTextId = 0 });
    }

    [ZeroShotRefsFact]
    public void Image_only_npz_with_a_map_head_gives_the_image_embeddings()
    {
        // A big_vision image npz (params/embedding/kernel, …, params/MAPHead_0/…): Checkpoint.Load reads the MAP head
        // into timm's attn_pool. Its GELU is not in the file: big_vision's is flax's tanh one (--gelu tanh).
        var path = Path.Combine(TinyTwoTower.TempDir("bv-img"), "siglip_img.npz");
        Npz.Write(path, BigVisionNpz.ImageOnly(Hf(), Heads));
        using var c = Classifier.Load(path, new LoadOptions { Gelu = Activation.GeluTanh });
        var vc = Assert.IsType<VitConfig>(c.Model.Config);
        Assert.Equal((Pooling.Map, Heads, 0), (vc.Pool, vc.NumHeads, vc.NumClasses));
        var r = SafeTensors.Read(D("siglip_refs.safetensors"));
        var e = c.Model.Run(r["pixel_values"], OutputKind.Logits);
        ZeroShotModel.NormalizeRows(e);
        Close(r["image_embeds"], e, 1e-4f, "image-only npz image_embeds");
        // A two-tower npz given to the image commands loads its image tower: the same embeddings.
        using var tower = Classifier.Load(Write("tower"));
        Assert.Equal("big_vision two-tower", tower.Checkpoint.Family);
        var t = tower.Model.Run(r["pixel_values"], OutputKind.Logits);
        ZeroShotModel.NormalizeRows(t);
        Close(r["image_embeds"], t, 1e-4f, "two-tower npz's image tower");
    }

    private static CheckpointException Refused(string path, ZeroShotOptions? o = null)
    {
        var e = Assert.Throws<CheckpointException>(() => ZeroShotModel.Load(path, o ?? new ZeroShotOptions { SentencePiece = Spiece }).Dispose());
        Assert.DoesNotContain('\n', e.Message);
        Assert.StartsWith(path + ": ", e.Message);
        return e;
    }

    [ZeroShotRefsFact]
    public void Bad_archives_are_one_line_errors_naming_the_file_and_array()
    {
        var good = Write("good");
        // Truncated: half of a real archive.
        var bytes = File.ReadAllBytes(good);
        var cut = Path.Combine(Path.GetDirectoryName(good)!, "cut.npz");
        File.WriteAllBytes(cut, bytes[..(bytes.Length / 2)]);
        Assert.Contains("corrupt or truncated .npz", Refused(cut).Message);
        // Garbage after the zip signature.
        var junk = Path.Combine(Path.GetDirectoryName(good)!, "junk.npz");
        File.WriteAllBytes(junk, [(byte)'P', (byte)'K', 3, 4, .. Enumerable.Range(0, 500).Select(i => (byte)(i * 37))]);
        Assert.Contains("corrupt or truncated .npz", Refused(junk).Message);

        var noText = Write("notxt", w => w.Where(kv => !kv.Key.StartsWith("params/txt/", StringComparison.Ordinal)).ToDictionary());
        Assert.Contains("no 'params/txt/' arrays: the two-tower .npz has no text tower", Refused(noText).Message);

        var narrow = Write("narrow", w => { w["params/txt/pos_embedding"] = new HostArray([1, 64, 16], new float[64 * 16]); return w; });
        var e = Refused(narrow);
        Assert.Equal("params/txt/pos_embedding", e.TensorName);
        Assert.Contains("has width 16 but the token embedding 32", e.Message);

        var kernel = Write("kernel", w => { w["params/img/MAPHead_0/MlpBlock_0/Dense_0/kernel"] = new HostArray([32, 64, 1], new float[32 * 64]); return w; });
        e = Refused(kernel);
        Assert.Equal("params/img/MAPHead_0/MlpBlock_0/Dense_0/kernel", e.TensorName);
        Assert.Contains("expected a rank-2 array", e.Message);

        var missing = Write("missing", w => { w.Remove("params/txt/Encoder_0/encoderblock_1/MlpBlock_0/Dense_1/bias"); return w; });
        e = Refused(missing);
        Assert.Equal("params/txt/Encoder_0/encoderblock_1/MlpBlock_0/Dense_1/bias", e.TensorName);
        Assert.Contains("missing", e.Message);

        var extra = Write("extra", w => { w["params/txt/Encoder_0/extra/kernel"] = new HostArray([2], [1, 2]); return w; });
        e = Refused(extra);
        Assert.Equal("params/txt/Encoder_0/extra/kernel", e.TensorName);

        var stray = Write("stray", w => { w["opt/state"] = new HostArray([2], [1, 2]); return w; });
        Assert.Equal("opt/state", Refused(stray).TensorName);

        var bert = Write("bert", w => { w.Remove("params/txt/Embed_0/embedding"); return w; });
        Assert.Contains("LiT's BERT text towers are not supported", Refused(bert).Message);

        // No tokenizer beside it and none given: what to pass.
        e = Refused(good, new ZeroShotOptions());
        Assert.Contains("holds no tokenizer: pass --spiece PATH", e.Message);
        var other = Path.Combine(Path.GetDirectoryName(good)!, "webli_tiny.model");
        File.Copy(Spiece, other);
        using (var beside = ZeroShotModel.Load(good)) Assert.Equal(64, beside.Tokenizer.ContextLength); // NAME.model beside it
    }

    [ZeroShotRefsFact]
    public void Lit_without_a_bias_is_softmax_and_encodes_texts_as_they_are()
    {
        var path = Write("lit", w => { w.Remove("params/b"); return w; });
        using var m = ZeroShotModel.Load(path, new ZeroShotOptions { SentencePiece = Spiece });
        Assert.Equal("lit", m.Family);
        Assert.False(m.Sigmoid);
        Assert.Equal(0f, m.LogitBias);
        using var siglip = ZeroShotModel.Load(Write("lit-ref"), new ZeroShotOptions { SentencePiece = Spiece });
        // SigLIP canonicalises (lower case, no punctuation); LiT's tensorflow_text SentencePiece does not.
        Assert.Equal(siglip.Tokenizer.Encode("a cat"), siglip.Tokenizer.Encode("A, CAT!"));
        Assert.NotEqual(m.Tokenizer.Encode("a cat"), m.Tokenizer.Encode("A, CAT!"));
        Assert.Equal(siglip.Tokenizer.Encode("a cat"), m.Tokenizer.Encode("a cat"));
        var images = new[] { "checker.png", "rings.png" }.Select(n => ImageCodecs.Decode(File.ReadAllBytes(D("images", n)), n)).ToList();
        var scores = m.Classify(images, ["a cat", "a dog", "noise"]);
        Assert.All(scores, s => Assert.Equal(1f, s.Sum(x => x.Probability), 4));
    }

    [ZeroShotRefsFact]
    public void Zeroshot_and_embed_cli_run_the_npz()
    {
        var path = Write("cli");
        var images = new[] { "checker.png", "noise.png" }.Select(n => D("images", n)).ToArray();
        using var m = ZeroShotModel.Load(path, new ZeroShotOptions { SentencePiece = Spiece });
        var decoded = images.Select(f => ImageCodecs.Decode(File.ReadAllBytes(f), f)).ToList();
        var want = m.Classify(decoded, ["a cat", "a dog"]);

        var (code, stdout, stderr) = CliRunner.Run(["zeroshot", "-c", path, "--spiece", Spiece, .. images, "-l", "a cat,a dog", "--json"]);
        Assert.True(code == 0, stderr);
        var rows = JsonNode.Parse(stdout)!.AsArray();
        Assert.Equal(2, rows.Count);
        for (int i = 0; i < 2; i++)
        {
            var top = rows[i]!["top"]!.AsArray();
            Assert.Equal(want[i][0].Label, (string?)top[0]!["label"]);
            Assert.Equal(want[i][0].Probability, (float)top[0]!["probability"]!, 5);
        }

        (code, stdout, stderr) = CliRunner.Run(["embed", "-c", path, "--spiece", Spiece, "--text", "a cat", images[0]]);
        Assert.True(code == 0, stderr);
        var json = JsonNode.Parse(stdout)!;
        Assert.Equal("siglip", (string?)json["model"]);
        var text = m.EmbedTexts(["a cat"]);
        Assert.Equal(text.Data, json["texts"]![0]!["embedding"]!.AsArray().Select(v => (float)v!).ToArray());
        var logit = m.Logits(m.EmbedImages([decoded[0]]), text).Data[0];
        Assert.Equal(logit, (float)json["logits_per_image"]![0]![0]!, 5);

        // Without the tokenizer: exit code, and the one line that says what to pass.
        (code, _, stderr) = CliRunner.Run(["embed", "-c", path, "--text", "a cat"]);
        Assert.NotEqual(0, code);
        Assert.Contains("holds no tokenizer: pass --spiece PATH", stderr);
        (code, _, stderr) = CliRunner.Run(["embed", "-c", D("siglip_tiny"), "--spiece", Spiece, "--text", "a cat"]);
        Assert.NotEqual(0, code);
        Assert.Contains("--spiece is for big_vision .npz checkpoints", stderr);
    }
}
