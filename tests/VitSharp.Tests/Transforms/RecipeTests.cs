using VitSharp.Data;
using VitSharp.Data.Transforms;

namespace VitSharp.Tests.Transforms;

public class RecipeTests
{
    static Image Gradient(int w, int h)
    {
        var p = new byte[w * h * 3];
        for (int y = 0; y < h; y++) for (int x = 0; x < w; x++) { int i = (y * w + x) * 3; p[i] = (byte)x; p[i + 1] = (byte)y; p[i + 2] = (byte)(x ^ y); }
        return new Image(w, h, 3, p);
    }

    [Theory]
    [InlineData("timm")]
    [InlineData("google")]
    [InlineData("hf")]
    public void NamedRecipesRoundTripThroughJson(string name)
    {
        var r = PreprocessRecipe.Named(name, 96);
        var json = r.ToJson();
        var back = PreprocessRecipe.Parse(json);
        Assert.Equal(r, back);
        Assert.Equal(name, back.Name);
        Assert.Contains("\"image_size\": 96", json);
        var img = Gradient(120, 80);
        Assert.Equal(r.Apply(img), back.Apply(img));
    }

    [Fact]
    public void ParseRejectsBadRecipes()
    {
        Assert.Throws<ArgumentException>(() => PreprocessRecipe.Parse("""{"image_size": 0}"""));
        Assert.Throws<ArgumentException>(() => PreprocessRecipe.Parse("""{"mean": [0.5], "std": [0.5]}"""));
        Assert.Throws<ArgumentException>(() => PreprocessRecipe.Named("nope"));
        var custom = PreprocessRecipe.Parse("""{"name": "mine", "image_size": 32, "resize": "Square", "mean": [0.1,0.2,0.3], "std": [1,1,1]}""");
        Assert.Equal(ResizeMode.Square, custom.Resize);
        Assert.Equal(0.2f, custom.Mean[1]);
    }

    [Fact]
    public void TimmEvalIsResizeShorterSideThenCentreCrop()
    {
        // 300x200 at crop_pct 0.875: shorter side 200 -> 256, so 384x256, then the centre 224x224.
        var img = Gradient(300, 200);
        var r = PreprocessRecipe.Timm(224, 0.875);
        var expected = Normalize.ToChw(CenterCrop.Apply(Resize.Pil(img, 384, 256, Interpolation.Bicubic), 224, 224), Normalize.ImageNetMean, Normalize.ImageNetStd);
        Assert.Equal(expected, r.Apply(img));
        Assert.Equal((384, 256), Resize.ShorterSideSize(300, 200, 256));
        Assert.Equal((256, 341), Resize.ShorterSideSize(150, 200, 256)); // int(256 * 200 / 150) = 341
        using var t = r.ApplyToTensor(img);
        Assert.Equal([1, 3, 224, 224], t.Shape);
    }

    [Fact]
    public void CentreCropRoundsHalfToEvenLikeTorchvision()
    {
        var img = Gradient(7, 7);
        Assert.Equal(2, CenterCrop.Apply(img, 2, 2).Pixels![0]); // (7-2)/2 = 2.5 -> 2
        Assert.Equal(2, CenterCrop.Apply(img, 4, 4).Pixels![0]); // 1.5 -> 2
        var padded = CenterCrop.Apply(Gradient(2, 2), 4, 4);     // torchvision pads with zeros: one pixel each side
        Assert.Equal(0, padded.Pixels![0]);
        Assert.Equal(1, padded.Pixels[(1 * 4 + 2) * 3]);
    }

    [Fact]
    public void NormalisationPresets()
    {
        var img = new Image(1, 1, 3, [0, 128, 255]);
        var half = Normalize.ToChw(img, Normalize.HalfMean, Normalize.HalfStd);
        Assert.Equal(-1f, half[0]);
        Assert.Equal(1f, half[2]);
        var inet = Normalize.ToChw(img, Normalize.ImageNetMean, Normalize.ImageNetStd);
        Assert.Equal((128 / 255f - 0.456f) / 0.224f, inet[1]);
        var gray = Normalize.ToChw(new Image(1, 1, 1, [255]), Normalize.HalfMean, Normalize.HalfStd);
        Assert.Equal(new[] { 1f, 1f, 1f }, gray);
    }

    [Fact]
    public void RandomResizedCropIsDeterministicAndInRange()
    {
        var a = new Random(42); var b = new Random(42);
        double areaSum = 0;
        for (int i = 0; i < 2000; i++)
        {
            var box = RandomResizedCrop.Sample(200, 150, a, 0.08, 1.0);
            Assert.Equal(box, RandomResizedCrop.Sample(200, 150, b, 0.08, 1.0));
            Assert.InRange(box.Left, 0, 200 - box.Width);
            Assert.InRange(box.Top, 0, 150 - box.Height);
            double ratio = (double)box.Width / box.Height, area = (double)box.Width * box.Height / (200 * 150);
            Assert.InRange(ratio, 0.75 * 0.9, 4.0 / 3 * 1.1);
            Assert.InRange(area, 0.07, 1.0);
            areaSum += area;
        }
        Assert.InRange(areaSum / 2000, 0.4, 0.6); // uniform area in (0.08, 1) accepted boxes skew a little small
    }

    [Fact]
    public void RandomResizedCropFallsBackToCentredRatioClampedCrop()
    {
        // A 1000x10 strip: no box with ratio in [3/4, 4/3] and area >= 8% fits, so after 10 tries: h = 10, w = round(10 * 4/3) = 13.
        var box = RandomResizedCrop.Sample(1000, 10, new Random(1));
        Assert.Equal(new RandomResizedCrop.Box((1000 - 13) / 2, 0, 13, 10), box);
        var tall = RandomResizedCrop.Sample(10, 1000, new Random(1));
        Assert.Equal(new RandomResizedCrop.Box(0, (1000 - 13) / 2, 10, 13), tall);
    }

    [Fact]
    public void TrainTransformIsSeededAndFlips()
    {
        var img = Gradient(120, 90);
        var r = PreprocessRecipe.Timm(32);
        Assert.Equal(r.ApplyTrain(img, new Random(7)), r.ApplyTrain(img, new Random(7)));
        Assert.NotEqual(r.ApplyTrain(img, new Random(7)), r.ApplyTrain(img, new Random(8)));
        var noFlip = r with { TrainHFlip = 0 };
        var alwaysFlip = r with { TrainHFlip = 1 };
        var x = noFlip.ApplyTrain(img, new Random(3));
        var y = alwaysFlip.ApplyTrain(img, new Random(3));
        for (int row = 0; row < 3 * 32; row++) for (int c = 0; c < 32; c++) Assert.Equal(x[row * 32 + c], y[row * 32 + 31 - c]);
        Assert.Equal(Flip.Horizontal(Flip.Horizontal(img)).Pixels, img.Pixels);
    }

    [Fact]
    public void GoogleRecipeUsesBilinearWithoutAntialiasAndHalfNormalisation()
    {
        var img = Gradient(64, 64);
        var g = PreprocessRecipe.Google(32).Apply(img);
        var hwc = Resize.BilinearNoAntialias(img, 32, 32);
        Assert.Equal((hwc[0] / 255f - 0.5f) / 0.5f, g[0]);
        // Downscaling by exactly 2 without antialias averages 2x2 neighbours: x = 2i + 0.5 on the source grid.
        Assert.Equal(0.5f * (0 + 1), hwc[0]);
    }
}

public class RecipeJsonDefaultsTests
{
    [Fact]
    public void MissingFieldsKeepTheirDefaults()
    {
        var r = PreprocessRecipe.Parse("""{"name": "mine"}""");
        Assert.Equal(0.875, r.CropPct);
        Assert.Equal(224, r.ImageSize);
        Assert.Equal([0.08, 1.0], r.TrainScale);
    }
}
