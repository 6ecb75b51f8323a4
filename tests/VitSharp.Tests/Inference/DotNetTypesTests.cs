using System.Numerics.Tensors;
using XDocument = System.Xml.Linq.XDocument;
using VitSharp.Checkpoints;
using VitSharp.Cli;
using VitSharp.Data.Codecs;
using VitSharp.Inference;
using VitSharp.Models;
using Tensor = System.Numerics.Tensors.Tensor;

namespace VitSharp.Tests.Inference;

/// <summary>
/// .NET's own types at the library's edge (docs/CSHARP.md): images as byte[] or Stream, preprocessed input and outputs as
/// System.Numerics.Tensors tensors and spans. Each overload gives what the image path gives, and timm's logits.
/// </summary>
public class DotNetTypesTests
{
    private static string Data(params string[] p) => Path.Combine([AppContext.BaseDirectory, "Data", .. p]);
    private static string Cat => Path.Combine(AppContext.BaseDirectory, "samples", "chelsea.png");

    [Fact]
    public void BytesAndStreamClassifyAsTheDecodedImage()
    {
        using var c = Classifier.Load(DefaultModel.BundledPath);
        var expected = c.Classify(ImageCodecs.Decode(Cat), topK: 3);
        Assert.Equal("cat", expected[0].Label); // measured: 56.7 % cat

        var fromBytes = c.Classify(File.ReadAllBytes(Cat), topK: 3);
        using var stream = File.OpenRead(Cat);
        var fromStream = c.Classify(stream, topK: 3);
        Assert.Equal(expected, fromBytes);
        Assert.Equal(expected, fromStream);
        Assert.InRange(expected[0].Probability, 0.5f, 1f);
    }

    [Fact]
    public void UndecodableBytesAreAOneLineErrorNamingThem()
    {
        using var c = Classifier.Load(DefaultModel.BundledPath);
        var e = Assert.Throws<ImageFormatException>(() => c.Classify("not an image"u8.ToArray(), name: "upload.png"));
        Assert.StartsWith("upload.png: unknown image format", e.Message);
        Assert.DoesNotContain('\n', e.Message);
        using var empty = new MemoryStream();
        Assert.Throws<ImageFormatException>(() => c.Classify(empty));
    }

    [Fact]
    public void TensorInputGivesTimmsLogits()
    {
        // timm's own preprocessed input for two images and the logits timm computed from it (bench/peers/make_classify_refs.py)
        using var c = Classifier.Load(TestData.Small("vit_tiny48", "model.safetensors"), new LoadOptions { Heads = 2 });
        var input = Npy.Read(Data("classify", "timm_input.npy"));
        var reference = Npy.Read(Data("classify", "timm_logits.npy"));
        Tensor<float> x = Tensor.Create(input.Data, [.. input.Shape.Select(d => (nint)d)]);

        var logits = c.Run(x);
        Assert.Equal(reference.Shape.Select(d => (nint)d).ToArray(), logits.Lengths.ToArray());
        var flat = new float[logits.FlattenedLength];
        logits.FlattenTo(flat);
        Assert.InRange(TestData.MaxAbsDiff(new HostArray(reference.Shape, flat), reference), 0, 1e-4f);

        // the span form: the same floats, written into the caller's buffer
        var dest = new float[flat.Length + 7];
        Assert.Equal(flat.Length, c.Run(input.Data, dest));
        Assert.Equal(flat, dest[..flat.Length]);

        // ClassifyBatch on the tensor ranks the same logits
        var top = c.ClassifyBatch(x.AsReadOnlyTensorSpan(), topK: 1);
        Assert.Equal(2, top.Count);
        for (int b = 0; b < 2; b++)
            Assert.Equal(Array.IndexOf(flat, flat.Skip(b * 10).Take(10).Max(), b * 10) - b * 10, top[b][0].Index);
    }

    [Fact]
    public void PreprocessThenRunMatchesTheImagePath()
    {
        using var c = Classifier.Load(DefaultModel.BundledPath);
        var image = ImageCodecs.Decode(Cat);
        var x = c.Preprocess(image);
        Assert.Equal(new nint[] { 1, 3, 64, 64 }, x.Lengths.ToArray());

        var logits = c.Run(x, OutputKind.Logits);
        var viaImages = c.Run([image], OutputKind.Logits);
        Assert.Equal(new nint[] { 1, 10 }, logits.Lengths.ToArray());
        var flat = new float[10];
        logits.FlattenTo(flat);
        Assert.Equal(viaImages.Data, flat);

        var features = c.Run(x, OutputKind.Pooled);
        Assert.Equal(new nint[] { 1, 256 }, features.Lengths.ToArray()); // the shipped model's width
        var f = new float[256];
        features.FlattenTo(f);
        Assert.Equal(c.Embed(image), f);
        Assert.Equal(f, c.Embed(File.ReadAllBytes(Cat)));
        using var stream = File.OpenRead(Cat);
        Assert.Equal(f, c.Embed(stream));
        Assert.Contains(f, v => v != 0);
    }

    [Fact]
    public void StridedTensorViewsRunAsTheirDenseCopy()
    {
        // an NHWC buffer seen as (1, 3, 64, 64) through strides: Run reads the view, not the buffer's order
        using var c = Classifier.Load(DefaultModel.BundledPath);
        var nchw = c.Preprocess(ImageCodecs.Decode(Cat));
        const int S = 64; // the shipped model's input side
        Assert.Equal(new nint[] { 1, 3, S, S }, nchw.Lengths.ToArray());
        var dense = new float[3 * S * S];
        nchw.FlattenTo(dense);
        var nhwc = new float[dense.Length];
        for (int ch = 0; ch < 3; ch++)
            for (int i = 0; i < S * S; i++) nhwc[i * 3 + ch] = dense[ch * S * S + i];
        var view = Tensor.Create(nhwc, [1, 3, S, S], [0, 1, S * 3, 3]); // NHWC: (n, c, h, w) at h·3S + w·3 + c
        Assert.False(view.IsDense);

        var expected = new float[10];
        c.Run(nchw).FlattenTo(expected);
        var got = new float[10];
        c.Run(view).FlattenTo(got);
        Assert.Equal(expected, got);
    }

    [Fact]
    public void WrongShapesAreInputErrors()
    {
        using var c = Classifier.Load(DefaultModel.BundledPath);
        var rank3 = Tensor.Create(new float[3 * 64 * 64], [3, 64, 64]);
        Assert.Contains("rank 3", Assert.Throws<InputException>(() => c.Run(rank3)).Message);
        var wrongSize = Tensor.Create(new float[3 * 16 * 16], [1, 3, 16, 16]);
        Assert.Contains("(B,3,64,64)", Assert.Throws<InputException>(() => c.Run(wrongSize)).Message);
        Assert.Contains("12288", Assert.Throws<InputException>(() => c.Run(new float[3000], new float[10])).Message);
        Assert.Contains("destination", Assert.Throws<InputException>(() => c.Run(new float[12288], new float[9])).Message);
    }

    [Fact]
    public void EveryPublicTypeOfTheLibraryHasADocSummary()
    {
        // dotnet pack ships VitSharp.xml beside the library; every exported type carries a <summary>
        var asm = typeof(Classifier).Assembly;
        var xml = Path.Combine(AppContext.BaseDirectory, "VitSharp.xml");
        Assert.True(File.Exists(xml), $"{xml} missing: GenerateDocumentationFile is off?");
        var summaries = XDocument.Load(xml).Descendants("member")
            .Where(m => !string.IsNullOrWhiteSpace(m.Element("summary")?.Value))
            .Select(m => (string)m.Attribute("name")!).ToHashSet();
        var missing = asm.GetExportedTypes().Select(t => "T:" + t.FullName!.Replace('+', '.'))
            .Where(id => !summaries.Contains(id)).Order().ToList();
        Assert.True(missing.Count == 0, "public types without a <summary>: " + string.Join(", ", missing));
    }
}
