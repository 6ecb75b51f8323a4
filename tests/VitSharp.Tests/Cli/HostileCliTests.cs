using System.Text.Json.Nodes;
using VitSharp.Data;
using VitSharp.Data.Codecs;

namespace VitSharp.Tests.Cli;

/// <summary>Issue 10 on the command line: a bad file among good ones is reported and the rest still run; bad --set
/// values are one line naming the key.</summary>
[Collection("cli")]
public class HostileCliTests : IDisposable
{
    private readonly string _tmp = Directory.CreateTempSubdirectory("vitsharp-hostile-cli-").FullName;

    public void Dispose() => Directory.Delete(_tmp, recursive: true);

    /// <summary>A folder of a.png, b.png (truncated: does not decode) and c.png (another image than a).</summary>
    private string FolderWithABadImage(string name = "images", bool withBad = true)
    {
        var dir = Path.Combine(_tmp, name);
        Directory.CreateDirectory(dir);
        var rng = new Random(1);
        var px = new byte[48 * 48 * 3];
        rng.NextBytes(px);
        ImageCodecs.Save(new Image(48, 48, 3, px), Path.Combine(dir, "a.png"));
        if (withBad) File.WriteAllBytes(Path.Combine(dir, "b.png"), File.ReadAllBytes(Path.Combine(dir, "a.png"))[..60]); // truncated
        rng.NextBytes(px);
        ImageCodecs.Save(new Image(48, 48, 3, px), Path.Combine(dir, "c.png"));
        return dir;
    }

    [Fact]
    public void ClassifyReportsACorruptImageAndGoesOn()
    {
        var dir = FolderWithABadImage();
        var ckpt = TestData.Small("vit_tiny48", "model.safetensors");

        var (code, stdout, err) = CliRunner.Run("classify", dir, "--checkpoint", ckpt, "--heads", "2", "-k", "1");
        Assert.Equal(1, code);
        Assert.Contains(Path.Combine(dir, "a.png"), stdout);
        Assert.Contains(Path.Combine(dir, "c.png"), stdout); // after the bad file
        var lines = err.TrimEnd().Split('\n');
        Assert.Equal(2, lines.Length);
        Assert.StartsWith("error: ", lines[0]);
        Assert.Contains("b.png", lines[0]);
        Assert.Equal("error: 1 of 3 images could not be read", lines[1].TrimEnd());

        (code, stdout, _) = CliRunner.Run("classify", dir, "--checkpoint", ckpt, "--heads", "2", "-k", "1", "--json");
        Assert.Equal(1, code);
        var results = JsonNode.Parse(stdout)!.AsArray();
        Assert.Equal(3, results.Count);
        Assert.Single(results, x => x!["error"] is not null && ((string)x["image"]!).EndsWith("b.png", StringComparison.Ordinal));
    }

    [Fact]
    public void RunOnAFolderReportsACorruptImageAndGoesOn()
    {
        var dir = FolderWithABadImage();
        var ckpt = TestData.Small("vit_tiny48", "model.safetensors");
        var y = Path.Combine(_tmp, "y.npy");
        var (code, _, err) = CliRunner.Run("run", "-c", ckpt, "--heads", "2", "-i", dir, "-o", y);
        Assert.Equal(1, code);
        var lines = err.TrimEnd().Split('\n').Select(l => l.TrimEnd()).ToArray();
        Assert.Equal(4, lines.Length);
        Assert.StartsWith("error: ", lines[0]);
        Assert.Contains(Path.Combine(dir, "b.png"), lines[0]);
        Assert.Equal($"wrote (2,10) to {y}", lines[1]); // two rows of the ten classes
        Assert.Equal("error: 1 of 3 images could not be read", lines[3]);
        // The rows are the good files', in order, and are what a folder of only those files gives.
        Assert.Equal(["a.png", "c.png"], File.ReadAllLines(Path.Combine(_tmp, "y.files.txt")).Select(Path.GetFileName));
        var good = FolderWithABadImage("good", withBad: false);
        var yGood = Path.Combine(_tmp, "good.npy");
        Assert.Equal(0, CliRunner.Run("run", "-c", ckpt, "--heads", "2", "-i", good, "-o", yGood).code);
        var (got, want) = (VitSharp.Checkpoints.Npy.Read(y), VitSharp.Checkpoints.Npy.Read(yGood));
        Assert.Equal(want.Shape, got.Shape);
        Assert.Equal(want.Data, got.Data);
        Assert.NotEqual(got.Data[0], got.Data[2]); // two different images

        // Nothing decodes: nothing is written, every file is reported.
        var bad = Path.Combine(_tmp, "bad");
        Directory.CreateDirectory(bad);
        File.Copy(Path.Combine(dir, "b.png"), Path.Combine(bad, "b.png"));
        var z = Path.Combine(_tmp, "z.npy");
        (code, _, err) = CliRunner.Run("run", "-c", ckpt, "--heads", "2", "-i", bad, "-o", z);
        Assert.Equal(1, code);
        Assert.Equal(2, err.TrimEnd().Split('\n').Length);
        Assert.EndsWith("error: 1 of 1 images could not be read", err.TrimEnd());
        Assert.False(File.Exists(z));
    }

    [Theory]
    [InlineData("model.embed_dimm=32", "error: --set model.embed_dimm=32: unknown key 'model.embed_dimm' (did you mean 'model.embed_dim'?)")]
    [InlineData("model.depth=abc", "error: --set model.depth=abc: 'model.depth' must be an integer, not \"abc\"")]
    [InlineData("optimizer.lr=-0.01", "error: --set optimizer.lr=-0.01: 'optimizer.lr' is -0.01; it must be > 0")]
    [InlineData("epochs=-1", "error: --set epochs=-1: 'epochs' is -1; it must be ≥ 1")]
    public void TrainSetErrorsAreOneLineNamingTheKey(string set, string expected)
    {
        var config = Path.Combine(_tmp, "run.json");
        File.WriteAllText(config, "{\n  \"epochs\": 1\n}");
        var (code, _, err) = CliRunner.Run("train", "--config", config, "--set", set, "--data", _tmp, "--output", Path.Combine(_tmp, "out"));
        Assert.Equal(1, code);
        Assert.Equal(expected, err.TrimEnd());
        Assert.False(Directory.Exists(Path.Combine(_tmp, "out")));
    }
}
