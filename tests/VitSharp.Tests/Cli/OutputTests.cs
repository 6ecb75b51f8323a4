using System.Text.Json;
using VitSharp.Cli;
using VitSharp.Tests.Training;
using VitSharp.Training;

namespace VitSharp.Tests.Cli;

/// <summary>Output fit for logs: no ANSI escapes when redirected, epochs from 1 on the console, JSON one document, unwrapped.</summary>
[Collection("cli")]
public class OutputTests : IDisposable
{
    private readonly string _tmp = Directory.CreateTempSubdirectory("vitsharp-cli-out-").FullName;

    public void Dispose() => Directory.Delete(_tmp, recursive: true);

    [Theory]
    [InlineData(false, null, true), InlineData(false, "", true), InlineData(false, "1", false), InlineData(true, null, false), InlineData(true, "1", false)]
    public void ColourOnlyOnATerminalWithoutNoColor(bool redirected, string? noColor, bool colour) =>
        Assert.Equal(colour, Terminal.ColourFor(redirected, noColor));

    [Fact]
    public void RedirectedTrainAndEvalArePlainWithEpochsFromOne()
    {
        Assert.True(Console.IsOutputRedirected); // the test host's stdout, as in a log
        var data = DataTests.MakeArchive(gzip: true);
        var config = Path.Combine(_tmp, "tiny.json");
        File.WriteAllText(config, """
            {
              "model": { "architecture": "vit", "img_size": 8, "patch_size": 4, "embed_dim": 8, "depth": 1, "num_heads": 2, "mlp_dim": 16 },
              "batch_size": 4, "epochs": 2, "log_every_steps": 1
            }
            """);
        var run = Path.Combine(_tmp, "run");
        var (code, stdout, err) = CliRunner.Run("train", "-C", config, "--data", data, "-o", run, "-d", "cpu");
        Assert.True(code == 0, err);
        Assert.DoesNotContain('\u001b', stdout + err);
        var lines = stdout.Split('\n', StringSplitOptions.TrimEntries);
        Assert.Equal(3, lines.Count(l => l.StartsWith("epoch 1  step ")));
        Assert.Equal(3, lines.Count(l => l.StartsWith("epoch 2  step ")));
        Assert.DoesNotContain(lines, l => l.StartsWith("epoch 0"));
        Assert.Contains("eval after epoch 1: top-1", stdout);
        Assert.Contains("eval after epoch 2: top-1", stdout);
        Assert.DoesNotContain("eval after epoch 0", stdout);
        Assert.DoesNotContain("%\n", stdout.Replace("\r", "")); // no degraded progress-bar lines ("…: 13%")
        // The model's JSON on one line, whole (not wrapped at 80 columns).
        var modelLine = Assert.Single(lines, l => l.Contains("steps (3 per epoch); model {"));
        Assert.True(modelLine.Length > 80);
        JsonDocument.Parse(modelLine[modelLine.IndexOf('{')..]).Dispose();
        // The JSONL log keeps the trainer's 0-based epoch.
        var log = File.ReadAllLines(Path.Combine(run, Trainer.LogFile)).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal([0, 1], log.Where(e => e.GetProperty("kind").GetString() == "eval").Select(e => e.GetProperty("epoch").GetInt32()));

        (code, stdout, err) = CliRunner.Run("eval", "-c", Path.Combine(run, Trainer.ModelFile), "--data", data, "-b", "5");
        Assert.True(code == 0, err);
        Assert.DoesNotContain('\u001b', stdout + err);
        Assert.Contains("images 12", stdout);
        Assert.Contains("cat", stdout);
    }

    [Fact]
    public void InfoJsonIsOneDocument()
    {
        var (code, stdout, err) = CliRunner.Run("info", "-c", TestData.Small("vit_tiny48", "hf"), "--json");
        Assert.True(code == 0, err);
        Assert.DoesNotContain('\u001b', stdout);
        using var doc = JsonDocument.Parse(stdout); // throws on a second document or a wrapped token
        Assert.Equal(JsonValueKind.Object, doc.RootElement.ValueKind);
        Assert.Equal(48, doc.RootElement.GetProperty("config").GetProperty("img_size").GetInt32());
    }
}
