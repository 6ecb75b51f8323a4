using System.Text.Json.Nodes;
using VitSharp.Checkpoints;
using VitSharp.Data;
using VitSharp.Data.Codecs;

namespace VitSharp.Tests.Cli;

/// <summary>classify's --top-k bounds, the label count info reports, and run's row-to-file sidecar.</summary>
[Collection("cli")]
public class LabelsAndRowsTests : IDisposable
{
    private readonly string _tmp = Directory.CreateTempSubdirectory("vitsharp-cli-rows-").FullName;

    public void Dispose() => Directory.Delete(_tmp, recursive: true);

    private string Images(int n)
    {
        var dir = Path.Combine(_tmp, "images");
        Directory.CreateDirectory(dir);
        for (int i = 0; i < n; i++)
        {
            var px = new byte[48 * 48 * 3];
            new Random(i + 1).NextBytes(px);
            ImageCodecs.Save(new Image(48, 48, 3, px), Path.Combine(dir, $"img{i}.png"));
        }
        return dir;
    }

    [Theory]
    [InlineData("-k", "0"), InlineData("--top-k", "0"), InlineData("-k", "-3")]
    public void TopKBelowOneIsAOneLineError(string option, string value)
    {
        var dir = Images(1);
        var (code, stdout, err) = CliRunner.Run("classify", dir, "-c", TestData.Small("vit_tiny48", "model.safetensors"), "--heads", "2", option, value);
        Assert.Equal(1, code);
        Assert.Equal("", stdout);
        Assert.Equal($"error: --top-k must be at least 1, not {value}", err.TrimEnd());
    }

    [Fact]
    public void InfoCountsTheLabelsItWillUse()
    {
        var thousand = Path.Combine(_tmp, "k1000.safetensors");
        Assert.Equal(0, CliRunner.Run("init", "-m", "vit_tiny_patch16_224", "--img-size", "32", "--classes", "1000", "-o", thousand).code);
        Assert.Null(Checkpoint.Load(thousand).Labels); // no names of its own
        var (code, stdout, err) = CliRunner.Run("info", "-c", thousand);
        Assert.True(code == 0, err);
        var json = JsonNode.Parse(stdout)!;
        Assert.Equal(1000, (int)json["labels"]!);
        Assert.Equal("imagenet", (string)json["labels_source"]!);

        var ten = Path.Combine(_tmp, "k10.safetensors");
        Assert.Equal(0, CliRunner.Run("init", "-m", "vit_tiny_patch16_224", "--img-size", "32", "--classes", "10", "-o", ten).code);
        json = JsonNode.Parse(CliRunner.Run("info", "-c", ten).stdout)!;
        Assert.Equal(0, (int)json["labels"]!);
        Assert.Equal("none", (string)json["labels_source"]!);
    }

    [Fact]
    public void InfoCountsACheckpointsOwnLabels()
    {
        var ckpt = VitSharp.Cli.DefaultModel.BundledPath;
        Assert.True(File.Exists(ckpt), $"the shipped model {ckpt} is part of the repository");
        var json = JsonNode.Parse(CliRunner.Run("info", "-c", ckpt).stdout)!;
        Assert.Equal(10, (int)json["labels"]!);
        Assert.Equal("checkpoint", (string)json["labels_source"]!);
    }

    [Fact]
    public void RunOnAFolderWritesWhichRowIsWhichFile()
    {
        var dir = Images(3);
        var ckpt = TestData.Small("vit_tiny48", "model.safetensors");
        var y = Path.Combine(_tmp, "y.npy");
        var (code, _, err) = CliRunner.Run("run", "-c", ckpt, "--heads", "2", "-i", dir, "-o", y);
        Assert.True(code == 0, err);
        var sidecar = Path.Combine(_tmp, "y.files.txt");
        Assert.Equal(sidecar, VitSharp.Cli.Commands.RunCommand.FilesSidecar(y));
        var rows = File.ReadAllLines(sidecar);
        Assert.Equal(["img0.png", "img1.png", "img2.png"], rows.Select(Path.GetFileName));
        var all = Npy.Read(y);
        Assert.Equal(3, all.Shape[0]);
        int k = (int)all.Shape[1];
        for (int i = 0; i < rows.Length; i++)
        {
            // Each row is that file's own output, run alone.
            var one = Path.Combine(_tmp, $"one{i}.npy");
            Assert.Equal(0, CliRunner.Run("run", "-c", ckpt, "--heads", "2", "-i", rows[i], "-o", one).code);
            Assert.Equal([Path.GetFullPath(rows[i])], File.ReadAllLines(Path.Combine(_tmp, $"one{i}.files.txt")).Select(Path.GetFullPath));
            var single = Npy.Read(one);
            for (int j = 0; j < k; j++) Assert.Equal(single.Data[j], all.Data[i * k + j], 1e-4f);
        }
        // Rows differ (the images do), so the order matters.
        Assert.NotEqual(all.Data[0], all.Data[k]);
    }
}
