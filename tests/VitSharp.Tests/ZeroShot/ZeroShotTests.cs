using System.Text.Json.Nodes;
using VitSharp.Backends;
using VitSharp.Backends.Cpu;
using VitSharp.Checkpoints;
using VitSharp.Data;
using VitSharp.Inference;
using VitSharp.Models;
using VitSharp.Text;

namespace VitSharp.Tests.ZeroShot;

public sealed class NfcTests
{
    [Theory]
    [InlineData("e\u0301", "\u00E9")]                 // e + combining acute → é
    [InlineData("cafe\u0301 ok", "caf\u00E9 ok")]
    [InlineData("A\u030A", "\u00C5")]                 // A + ring → Å
    [InlineData("\u212B", "\u00C5")]                  // the Ångström sign is a singleton: decomposed, recomposed as Å
    [InlineData("\u1100\u1161\u11A8", "\uAC01")]      // Hangul jamo L V T → 각 (algorithmic)
    [InlineData("a\u0301\u0323", "\u1EA1\u0301")]     // reordered by combining class: dot below (220) first, then composed
    [InlineData("\u0958", "\u0915\u093C")]            // a composition exclusion: stays decomposed
    [InlineData("\uFB01", "\uFB01")]                  // a compatibility ligature: NFC leaves it
    [InlineData("plain ascii", "plain ascii")]
    [InlineData("\u00E9\u0301", "\u00E9\u0301")]      // é + acute: nothing composes with é + acute
    public void Composes_as_unicode_says(string input, string nfc) => Assert.Equal(nfc, Nfc.Normalize(input));
}

public sealed class ClipTokenizerTests
{
    private static ClipTokenizer Full() => ClipTokenizer.FromBpeGz(TestData.Shared("text", "clip", "bpe_simple_vocab_16e6.txt.gz"));

    [SharedFact]
    public void Known_ids_of_the_full_vocabulary()
    {
        var t = Full();
        Assert.Equal(49408, t.VocabSize);
        Assert.Equal([49406, 320, 1125, 539, 320, 2368, 49407], t.Encode("a photo of a cat"));
        // Case, whitespace runs and NFC are normalised away before the BPE.
        Assert.Equal(t.Encode("a photo of a cat"), t.Encode("  A   PHOTO\tof a Cat "));
        Assert.Equal(t.Encode("caf\u00E9"), t.Encode("cafe\u0301"));
        Assert.Equal([49406, 49407], t.Encode(""));
        // A special token in the text is that token; punctuation runs are their own pieces.
        Assert.Equal([49406, 320, 49407, 321, 49407], t.Encode("a <|endoftext|> b"));
        Assert.Equal([49406, 3306, 267, 1002, 256, 49407], t.Encode("Hello, World!"));
    }

    [SharedFact]
    public void Truncates_to_the_context_keeping_the_end_of_text()
    {
        var t = Full();
        var ids = t.Encode(string.Join(" ", Enumerable.Repeat("cat", 200)));
        Assert.Equal(77, ids.Length);
        Assert.Equal(49406, ids[0]);
        Assert.Equal(49407, ids[^1]);
        Assert.All(ids[1..^1], id => Assert.Equal(2368, id));
    }

    [Fact]
    public void Folder_vocabulary_merges_and_bytes()
    {
        var dir = TinyTwoTower.WriteClip(TinyTwoTower.TempDir("tok"));
        var t = ClipTokenizer.FromFolder(dir);
        var v = TinyTwoTower.Vocab();
        Assert.Equal([v["<|startoftext|>"], v["cat</w>"], v["dog</w>"], v["photo</w>"], v["<|endoftext|>"]], t.Encode("Cat DOG photo"));
        // No merge for "x": the byte tokens, the last with </w>; "é" is two UTF-8 bytes → two byte tokens.
        var bytes = ClipTokenizer.ByteChars();
        Assert.Equal([v["<|startoftext|>"], v["x"], v["x</w>"], v["<|endoftext|>"]], t.Encode("xx"));
        // (printable bytes stand for themselves in GPT-2's table)
        Assert.Equal([v["<|startoftext|>"], Array.IndexOf(bytes, "\u00C3"), 256 + Array.IndexOf(bytes, "\u00A9"), v["<|endoftext|>"]], t.Encode("é"));
    }

    [Fact]
    public void Broken_files_name_the_file()
    {
        var dir = TinyTwoTower.TempDir("badtok");
        File.WriteAllText(Path.Combine(dir, "vocab.json"), "[1,2]");
        File.WriteAllText(Path.Combine(dir, "merges.txt"), "#version: 0.2\na b\n");
        var e = Assert.ThrowsAny<VitSharpException>(() => ClipTokenizer.FromFolder(dir));
        Assert.Contains("vocab.json", e.Message);
        File.WriteAllText(Path.Combine(dir, "vocab.json"), "{\"a\": 0}");
        File.WriteAllText(Path.Combine(dir, "merges.txt"), "#version: 0.2\na b c\n");
        e = Assert.ThrowsAny<VitSharpException>(() => ClipTokenizer.FromFolder(dir));
        Assert.Contains("merges.txt: line 2", e.Message);
        e = Assert.ThrowsAny<VitSharpException>(() => ClipTokenizer.FromBpeGz(Path.Combine(dir, "merges.txt")));
        Assert.Contains("merges.txt", e.Message);
    }
}

public sealed class CausalAttentionTests
{
    [Fact]
    public void Row_i_is_full_attention_over_the_first_i_plus_one_tokens()
    {
        IBackend be = CpuBackend.Instance;
        int n = 5, heads = 2, hd = 16, width = heads * hd;
        var rng = new Random(4);
        var qkv = Enumerable.Range(0, n * 3 * width).Select(_ => (float)rng.NextDouble() * 2 - 1).ToArray();
        using var x = be.Allocate([1, n, 3 * width], Tensors.DType.F32);
        using var y = be.Allocate([1, n, width], Tensors.DType.F32);
        be.CopyFromHost(qkv, x);
        be.CausalAttention(x, y, heads, 0.25f);
        var causal = new float[n * width];
        be.CopyToHost(y, causal);
        for (int i = 0; i < n; i++)
        {
            using var xp = be.Allocate([1, i + 1, 3 * width], Tensors.DType.F32);
            using var yp = be.Allocate([1, i + 1, width], Tensors.DType.F32);
            be.CopyFromHost(qkv.AsSpan(0, (i + 1) * 3 * width), xp);
            be.Attention(xp, yp, heads, 0.25f);
            var full = new float[(i + 1) * width];
            be.CopyToHost(yp, full);
            for (int c = 0; c < width; c++) Assert.Equal(full[i * width + c], causal[i * width + c], 1e-5f);
        }
        // Row 0 sees only itself: its values.
        for (int c = 0; c < width; c++) Assert.Equal(qkv[2 * width + c], causal[c], 1e-6f);
    }
}

public sealed class ZeroShotModelTests
{
    private static readonly Lazy<string> Folder = new(() => TinyTwoTower.WriteClip(TinyTwoTower.TempDir("clip")));

    private static Image Picture(int seed)
    {
        var rng = new Random(seed);
        var px = new byte[TinyTwoTower.Image * TinyTwoTower.Image * 3];
        rng.NextBytes(px);
        return new Image(TinyTwoTower.Image, TinyTwoTower.Image, 3, px);
    }

    [Fact]
    public void Text_tower_is_causal_and_pools_the_end_of_text()
    {
        using var m = ZeroShotModel.Load(Folder.Value);
        var v = TinyTwoTower.Vocab();
        int bos = v["<|startoftext|>"], eos = v["<|endoftext|>"], cat = v["cat</w>"], dog = v["dog</w>"];
        var e = m.Text.Embed([[bos, cat, dog, eos], [bos, cat, dog, eos, dog, cat], [bos, cat, cat, eos]], eos);
        Assert.Equal([3, TinyTwoTower.Projection], e.Shape);
        var r0 = e.Data[..16];
        var r1 = e.Data[16..32];
        var r2 = e.Data[32..48];
        for (int i = 0; i < 16; i++) Assert.Equal(r0[i], r1[i], 1e-5f);   // tokens after the end of text change nothing
        Assert.True(r0.Zip(r2).Max(p => Math.Abs(p.First - p.Second)) > 1e-3f); // a token before it does
        Assert.Equal(TextPooling.EndOfText, m.Text.Config.Pooling);
        Assert.True(m.Text.Config.Causal);
        Assert.Equal(Activation.QuickGelu, m.Text.Config.Activation);
    }

    [Fact]
    public void Logits_are_the_scaled_cosines_and_clip_probabilities_a_softmax()
    {
        using var m = ZeroShotModel.Load(Folder.Value);
        var imgs = new[] { Picture(1), Picture(2) };
        string[] labels = ["cat", "dog", "photo"];
        var ie = m.EmbedImages(imgs);
        var te = m.EmbedTexts(labels);
        foreach (var a in new[] { ie, te })
            for (int r = 0; r < a.Shape[0]; r++)
                Assert.Equal(1.0, Math.Sqrt(a.Data.Skip(r * 16).Take(16).Sum(x => (double)x * x)), 5);
        var logits = m.Logits(ie, te);
        Assert.Equal([2, 3], logits.Shape);
        double dot = Enumerable.Range(0, 16).Sum(k => (double)ie.Data[16 + k] * te.Data[2 * 16 + k]);
        Assert.Equal(Math.Exp(2.6592) * dot, logits.Data[1 * 3 + 2], 4);
        var scores = m.Classify(imgs, labels);
        Assert.Equal(2, scores.Count);
        Assert.Equal(1.0, scores[0].Sum(s => s.Probability), 5);
        Assert.True(scores[0][0].Logit >= scores[0][1].Logit && scores[0][1].Logit >= scores[0][2].Logit);
        var row = logits.Data[..3];
        Assert.Equal(Array.IndexOf(row, row.Max()), scores[0][0].Index);
        Assert.Equal(labels[scores[0][0].Index], scores[0][0].Label);
    }

    [Fact]
    public void Templates_are_averaged_and_label_embeddings_cached()
    {
        using var m = ZeroShotModel.Load(Folder.Value);
        string[] templates = ["a {}", "a photo of the {}."];
        var ens = m.LabelEmbeddings(["dog"], templates);
        var each = m.EmbedTexts(["a dog", "a photo of the dog."]);
        var mean = Enumerable.Range(0, 16).Select(k => each.Data[k] + each.Data[16 + k]).ToArray();
        double norm = Math.Sqrt(mean.Sum(x => (double)x * x));
        for (int k = 0; k < 16; k++) Assert.Equal(mean[k] / norm, ens.Data[k], 5);
        var again = m.LabelEmbeddings(["dog"], templates);
        Assert.Equal(ens.Data, again.Data);
        Assert.Throws<InputException>(() => m.LabelEmbeddings(["dog"], ["no placeholder"]));
    }

    [Fact]
    public void Bad_folders_are_typed_errors_naming_the_file()
    {
        var dir = TinyTwoTower.WriteClip(TinyTwoTower.TempDir("badtype"), editConfig: c => c["model_type"] = "vit");
        var e = Assert.Throws<CheckpointException>(() => ZeroShotModel.Load(dir));
        Assert.Contains("config.json", e.Message);
        Assert.Contains("not a two-tower model", e.Message);

        dir = TinyTwoTower.WriteClip(TinyTwoTower.TempDir("missing"), edit: w => w.Remove("text_model.final_layer_norm.weight"));
        e = Assert.Throws<CheckpointException>(() => ZeroShotModel.Load(dir));
        Assert.Contains("model.safetensors", e.Message);
        Assert.Contains("text_model.final_layer_norm.weight", e.Message);

        dir = TinyTwoTower.WriteClip(TinyTwoTower.TempDir("extra"), edit: w => w["text_model.extra.weight"] = new HostArray([2], [1, 2]));
        e = Assert.Throws<CheckpointException>(() => ZeroShotModel.Load(dir));
        Assert.Contains("text_model.extra.weight", e.Message);

        dir = TinyTwoTower.WriteClip(TinyTwoTower.TempDir("layers"), editConfig: c => c["text_config"]!["num_hidden_layers"] = 3);
        e = Assert.Throws<CheckpointException>(() => ZeroShotModel.Load(dir));
        Assert.Contains("num_hidden_layers", e.Message);
    }

    [Fact]
    public void Clip_prompt_templates_ship_with_the_library()
    {
        var cifar = PromptTemplates.Get("cifar10");
        Assert.Equal(18, cifar.Length);
        Assert.Equal("a photo of a {}.", cifar[0]);
        Assert.Equal("a photo of the big {}.", cifar[^1]);
        Assert.Equal(["{}"], PromptTemplates.Get("none"));
        Assert.Contains("Food101", PromptTemplates.Names);
        Assert.All(PromptTemplates.Names, n => Assert.All(PromptTemplates.Get(n), t => Assert.Contains("{}", t)));
        Assert.Throws<InputException>(() => PromptTemplates.Get("NoSuchDataset"));
    }
}

public sealed class SiglipTests
{
    private static readonly Lazy<string> Folder = new(() => TinyTwoTower.WriteSiglip(TinyTwoTower.TempDir("siglip")));

    [Fact]
    public void Tokenizer_lowercases_drops_punctuation_and_pads_with_end_of_text()
    {
        var t = SiglipTokenizer.FromFolder(Folder.Value);
        Assert.Equal(64, t.ContextLength);
        int Id(string piece) => 3 + Array.IndexOf(TinyTwoTower.Pieces, piece);
        var ids = t.Encode("A Photo, of a  CAT!! ");
        Assert.Equal(64, ids.Length);
        Assert.Equal([Id("\u2581a"), Id("\u2581photo"), Id("\u2581of"), Id("\u2581a"), Id("\u2581cat"), 1], ids[..6]);
        Assert.All(ids[6..], id => Assert.Equal(1, id));   // </s> is SigLIP's pad
        Assert.Equal("a photo of a cat", SiglipTokenizer.Canonicalize("A photo... of a {cat}?"));
        var longIds = t.Encode(string.Join(" ", Enumerable.Repeat("dog", 100)));
        Assert.Equal(64, longIds.Length);
        Assert.Equal(1, longIds[^1]);
        Assert.All(longIds[..^1], id => Assert.Equal(Id("\u2581dog"), id));
    }

    [Fact]
    public void Sigmoid_scores_with_logit_bias()
    {
        using var m = ZeroShotModel.Load(Folder.Value);
        Assert.Equal("siglip", m.Family);
        Assert.False(m.Text.Config.Causal);
        Assert.Equal(TextPooling.LastToken, m.Text.Config.Pooling);
        Assert.Equal(-2.5f, m.LogitBias);
        var px = new byte[32 * 32 * 3];
        new Random(5).NextBytes(px);
        var img = new Image(32, 32, 3, px);
        string[] labels = ["cat", "dog"];
        var logits = m.Logits(m.EmbedImages([img]), m.EmbedTexts(labels));
        var ie = m.EmbedImages([img]);
        var te = m.EmbedTexts(["dog"]);
        double cos = Enumerable.Range(0, ie.Shape[1]).Sum(k => (double)ie.Data[k] * te.Data[k]);
        Assert.Equal(10 * cos - 2.5, logits.Data[1], 4);
        var s = m.Classify([img], labels)[0];
        foreach (var x in s) Assert.Equal(1 / (1 + Math.Exp(-logits.Data[x.Index])), x.Probability, 5);
    }
}
