using System.Text.Json.Nodes;
using VitSharp.Checkpoints;
using VitSharp.Data.Transforms;
using VitSharp.Export;
using VitSharp.Inference;
using VitSharp.Models;
using VitSharp.Tests.Cli;
using VitSharp.Training;

namespace VitSharp.Tests.Checkpoints;

/// <summary>The one metadata record: round trip, strict keys (typed one-line errors), files written before it.</summary>
[Collection("cli")]
public class ModelMetadataTests : IDisposable
{
    private static readonly VitConfig Tiny = new() { ImageSize = 8, PatchSize = 4, EmbedDim = 8, Depth = 1, NumHeads = 2, MlpDim = 16, NumClasses = 3 };
    private readonly string _tmp = Directory.CreateTempSubdirectory("vitsharp-md-").FullName;

    public void Dispose() => Directory.Delete(_tmp, recursive: true);

    private string Write(string name, Dictionary<string, string> meta)
    {
        var p = Path.Combine(_tmp, name);
        SafeTensors.Write(p, Initializer.Init(Tiny, 0), meta);
        return p;
    }

    private static ModelMetadata Record() => new()
    {
        Config = Tiny,
        Labels = ["a", "b", "c"],
        Preprocess = PreprocessRecipe.Google(8),
    };

    [Fact]
    public void SaveThenLoadRoundTripsTheRecord()
    {
        var p = Path.Combine(_tmp, "m.safetensors");
        Checkpoint.Save(p, Record(), Initializer.Init(Tiny, 0));
        var (_, meta, _) = SafeTensors.ReadHeader(p);
        Assert.Equal([ModelMetadata.MetadataKey], meta.Keys); // one key
        var ckpt = Checkpoint.Load(p);
        Assert.Equal(Record().ToJson(), ckpt.Metadata!.ToJson());
        Assert.Equal(["a", "b", "c"], ckpt.Labels!);
        Assert.Equal(PreprocessRecipe.Google(8), Recipes.For(ckpt));
        // The stated recipe comes first, at the size the model runs at.
        Assert.Equal(PreprocessRecipe.Google(16), Recipes.For(Checkpoint.Load(p, new LoadOptions { ImageSize = 16 })));
        var json = JsonNode.Parse(meta[ModelMetadata.MetadataKey])!;
        Assert.Equal(1, (int)json["format_version"]!);
        Assert.Equal("square", (string?)json["preprocess"]!["resize"]);
        Assert.Equal("bilinear", (string?)json["preprocess"]!["interpolation"]);
        Assert.False((bool)json["preprocess"]!["antialias"]!);
        Assert.Equal(0.5, (double)json["preprocess"]!["mean"]![0]!);
    }

    [Theory]
    [InlineData("colour", "")]
    [InlineData("colour", "config.")]
    [InlineData("colour", "preprocess.")]
    public void AnUnknownKeyIsAOneLineTypedErrorNamingTheFileAndTheKey(string key, string at)
    {
        var json = Record().ToJsonObject();
        var target = at == "" ? json : (JsonObject)json[at.TrimEnd('.')]!;
        target[key] = 1;
        var p = Write("bad.safetensors", new() { [ModelMetadata.MetadataKey] = json.ToJsonString() });
        var e = Assert.Throws<CheckpointException>(() => Checkpoint.Load(p));
        Assert.Equal(p, e.File);
        Assert.Contains($"unknown key '{at}{key}'", e.Message);
        Assert.StartsWith(p + ": ", e.Message);
        Assert.DoesNotContain('\n', e.Message);

        var (code, _, err) = CliRunner.Run("info", "--checkpoint", p);
        Assert.Equal(1, code);
        Assert.Equal($"error: {e.Message}", err.TrimEnd());
    }

    [Fact]
    public void OtherBadRecordsAreTypedErrors()
    {
        string Bad(Action<JsonObject> edit)
        {
            var json = Record().ToJsonObject();
            edit(json);
            var p = Write("bad.safetensors", new() { [ModelMetadata.MetadataKey] = json.ToJsonString() });
            return Assert.Throws<CheckpointException>(() => Checkpoint.Load(p)).Detail;
        }
        Assert.Contains("format_version 2", Bad(j => j["format_version"] = 2));
        Assert.Contains("missing key 'format_version'", Bad(j => j.Remove("format_version")));
        Assert.Contains("missing key 'preprocess.mean'", Bad(j => ((JsonObject)j["preprocess"]!).Remove("mean")));
        Assert.Contains("'preprocess.resize'", Bad(j => j["preprocess"]!["resize"] = "stretch"));
        Assert.Contains("2 labels for a model with 3 classes", Bad(j => j["labels"] = new JsonArray("a", "b")));
        Assert.Contains("'config.depth' must be an integer", Bad(j => j["config"]!["depth"] = "one"));
        var p = Write("notjson.safetensors", new() { [ModelMetadata.MetadataKey] = "{" });
        Assert.Contains("not valid JSON", Assert.Throws<CheckpointException>(() => Checkpoint.Load(p)).Message);
    }

    [Fact]
    public void FilesWrittenBeforeTheRecordStillLoad()
    {
        // What TrainCheckpoint.ExportModel wrote: config, labels and the normalisation under three keys.
        var p = Write("old.safetensors", new()
        {
            [Checkpoint.ConfigMetadataKey] = Tiny.ToJson().ToJsonString(),
            [Checkpoint.LabelsMetadataKey] = """["x","y","z"]""",
            [TrainCheckpoint.NormalizeKey] = """{"mean":[0.1,0.2,0.3],"std":[0.4,0.5,0.6],"recipe":null}""",
        });
        var ckpt = Checkpoint.Load(p);
        Assert.Equal(["x", "y", "z"], ckpt.Labels!);
        var r = Recipes.For(ckpt);
        Assert.Equal(ResizeMode.Square, r.Resize);
        Assert.Equal([0.1f, 0.2f, 0.3f], r.Mean);
        Assert.Equal([0.4f, 0.5f, 0.6f], r.Std);
        Assert.Equal(2, ((VitConfig)ckpt.Config).NumHeads);
        Assert.Equal(0, ckpt.Metadata!.FormatVersion);
        // Saved again, it is written as the current record, and says the same.
        var again = Path.Combine(_tmp, "again.safetensors");
        Checkpoint.Save(again, ckpt.Metadata, Initializer.Init(Tiny, 0));
        var reread = Checkpoint.Load(again);
        Assert.Equal(ModelMetadata.CurrentVersion, reread.Metadata!.FormatVersion);
        Assert.Equal(r, Recipes.For(reread));
        Assert.Equal(["x", "y", "z"], reread.Labels!);

        // What `vit init` wrote: the config alone; the format's convention (timm) applies.
        var init = Checkpoint.Load(Write("init.safetensors", new() { [Checkpoint.ConfigMetadataKey] = Tiny.ToJson().ToJsonString() }));
        Assert.Null(init.Metadata!.Preprocess);
        Assert.Equal(PreprocessRecipe.Timm(8), Recipes.For(init));
    }

    [Fact]
    public void InitStatesItsRecipeAndExportCarriesTheRecord()
    {
        var p = Path.Combine(_tmp, "init.safetensors");
        var (code, _, err) = CliRunner.Run("init", "--model", "vit_tiny_patch16_224", "--img-size", "32", "--classes", "2", "--recipe", "hf", "--output", p);
        Assert.True(code == 0, err);
        var ckpt = Checkpoint.Load(p);
        Assert.Equal(PreprocessRecipe.HuggingFace(32), ckpt.Metadata!.Preprocess);
        var onnx = Path.Combine(_tmp, "m.onnx");
        (code, _, err) = CliRunner.Run("export", "--checkpoint", p, "--output", onnx, "--labels", WriteLabels("cat", "dog"));
        Assert.True(code == 0, err);
        var props = OnnxMetadata.Read(onnx);
        var md = ModelMetadata.Parse(props[ModelMetadata.MetadataKey], onnx);
        Assert.Equal(["cat", "dog"], md.Labels!);
        Assert.Equal(PreprocessRecipe.HuggingFace(32), md.Preprocess);
        Assert.Equal(ckpt.Config.ToJson().ToJsonString(), md.Config.ToJson().ToJsonString());
        Assert.True(props.ContainsKey(Checkpoint.ConfigMetadataKey)); // what the exporter writes itself is kept
    }

    private string WriteLabels(params string[] names)
    {
        var p = Path.Combine(_tmp, "labels.txt");
        File.WriteAllLines(p, names);
        return p;
    }
}
