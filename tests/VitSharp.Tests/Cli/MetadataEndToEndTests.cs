using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Nodes;
using VitSharp.Backends.Cpu;
using VitSharp.Checkpoints;
using VitSharp.Cli.Commands;
using VitSharp.Cli.Serving;
using VitSharp.Data;
using VitSharp.Data.Codecs;
using VitSharp.Data.Transforms;
using VitSharp.Export;
using VitSharp.Inference;
using VitSharp.Models;
using VitSharp.Tests.Export;
using VitSharp.Training;

namespace VitSharp.Tests.Cli;

/// <summary>
/// Issue 8: a model trained with its own normalisation is preprocessed as it was trained by every command. Trains a tiny
/// ViT briefly on synthetic images (class = brightness; mean/std far from the defaults, images larger than the model and
/// not all square), then classifies every test image with `vit eval`'s code path, `vit classify`, `vit run`, the HTTP
/// service and the exported ONNX model in ONNX Runtime (its C# package) with the preprocessing its metadata states.
/// </summary>
[Collection("cli")]
public class MetadataEndToEndTests : IDisposable
{
    private static readonly float[] Mean = [0.9f, 0.1f, 0.5f], Std = [0.1f, 0.2f, 0.4f];
    private static readonly string[] Classes = ["bright", "dark", "mid"]; // sorted, as the image folder reads them
    private readonly string _tmp = Directory.CreateTempSubdirectory("vitsharp-meta-").FullName;

    public void Dispose() => Directory.Delete(_tmp, recursive: true);

    /// <summary>train/ and test/ of 3 classes told apart by brightness, with noise and a tint; 20×20 and 24×16 images.</summary>
    private static string MakeData(string root)
    {
        var level = new Dictionary<string, int> { ["dark"] = 45, ["mid"] = 128, ["bright"] = 210 };
        foreach (var (split, n) in new[] { ("train", 16), ("test", 5) })
            foreach (var cls in Classes)
            {
                var dir = Path.Combine(root, split, cls);
                Directory.CreateDirectory(dir);
                for (int i = 0; i < n; i++)
                {
                    var rng = new Random(split.Length * 1000 + Array.IndexOf(Classes, cls) * 100 + i);
                    int w = i % 2 == 0 ? 20 : 24, h = i % 2 == 0 ? 20 : 16;
                    var tint = new[] { rng.Next(-15, 16), rng.Next(-15, 16), rng.Next(-15, 16) };
                    var px = new byte[w * h * 3];
                    for (int p = 0; p < w * h; p++)
                        for (int c = 0; c < 3; c++)
                            px[p * 3 + c] = (byte)Math.Clamp(level[cls] + tint[c] + rng.Next(-20, 21), 0, 255);
                    ImageCodecs.Save(new Image(w, h, 3, px), Path.Combine(dir, $"{i:D2}.png"));
                }
            }
        return root;
    }

    private static int ArgMax(ReadOnlySpan<float> row)
    {
        int arg = 0;
        for (int j = 1; j < row.Length; j++) if (row[j] > row[arg]) arg = j;
        return arg;
    }

    [Fact]
    public async Task EveryCommandPredictsWhatEvalPredicts()
    {
        var data = MakeData(Path.Combine(_tmp, "data"));
        var run = Path.Combine(_tmp, "run");
        var cfg = TrainConfig.Parse($$"""
            {
              "model": { "architecture": "vit", "img_size": 16, "patch_size": 4, "embed_dim": 16, "depth": 1, "num_heads": 2, "mlp_dim": 32, "global_pool": "avg" },
              "data": { "path": {{JsonSerializer.Serialize(data)}}, "mean": [0.9, 0.1, 0.5], "std": [0.1, 0.2, 0.4], "workers": 1 },
              "optimizer": { "lr": 0.01, "weight_decay": 0 },
              "batch_size": 8, "epochs": 8, "label_smoothing": 0, "seed": 0, "log_every_steps": 100,
              "output": {{JsonSerializer.Serialize(run)}}
            }
            """);
        var (train, val) = TrainData.Open(cfg.Data, cfg.Seed);
        using (var trainer = new Trainer(cfg, train, val)) trainer.Run(resume: false);
        var model = Path.Combine(run, Trainer.ModelFile);

        // The record: config, the simple pipeline's eval transform with the training normalisation, the class names.
        var ckpt = Checkpoint.Load(model);
        var md = ckpt.Metadata!;
        Assert.Equal(ModelMetadata.CurrentVersion, md.FormatVersion);
        Assert.Equal(Classes, md.Labels);
        Assert.Equal(ResizeMode.Square, md.Preprocess!.Resize);
        Assert.Equal(Interpolation.Bicubic, md.Preprocess.Interpolation);
        Assert.Equal(16, md.Preprocess.ImageSize);
        Assert.Equal(Mean, md.Preprocess.Mean);
        Assert.Equal(Std, md.Preprocess.Std);
        Assert.Equal(ckpt.Config.ToJson().ToJsonString(), md.Config.ToJson().ToJsonString());
        // The training checkpoint carries the same record and loads for inference (optimizer state set aside).
        var resumable = Checkpoint.Load(Path.Combine(run, Trainer.CheckpointFile));
        Assert.Equal(md.ToJson(), resumable.Metadata!.ToJson());
        Assert.Equal(ckpt.Weights.Keys.Order(), resumable.Weights.Keys.Order());

        // `vit eval`'s code path: the reference, image by image, in the dataset's order (class folders, then files).
        var (result, names) = VitSharp.Training.Evaluator.EvaluateCheckpoint(model, data, "test", 0, 64, null, CpuBackend.Instance);
        var testDir = Path.Combine(data, "test");
        var files = Classes.SelectMany(c => Directory.GetFiles(Path.Combine(testDir, c)).Order(StringComparer.Ordinal)).ToList();
        Assert.Equal(files.Count, result.Predictions.Length);
        var expected = files.Select((f, i) => (f, result.Predictions[i])).ToDictionary(t => t.f, t => t.Item2);
        Assert.Equal(Classes, names);
        Assert.True(result.Top1 >= 0.9, $"training did not learn the classes (top-1 {result.Top1:P0})");
        var (code, stdout, err) = CliRunner.Run("eval", "--checkpoint", model, "--data", data);
        Assert.True(code == 0, err);
        Assert.Contains($"top-1 {result.Top1:P2}", stdout);

        // What classify did before the record: timm's recipe with ImageNet's normalisation. It must tell, or this test
        // could not catch a command that ignores the record.
        using (var timm = Classifier.Load(model, recipe: PreprocessRecipe.Timm()))
            Assert.NotEqual(files.Select(f => expected[f]), files.Select(f => timm.Classify(ImageCodecs.Decode(f), 1)[0].Index));

        // vit classify
        (code, stdout, err) = CliRunner.Run("classify", "--checkpoint", model, "--json", "--top-k", "1", testDir);
        Assert.True(code == 0, err);
        var classified = JsonNode.Parse(stdout)!.AsArray().ToDictionary(x => (string)x!["image"]!, x => (int)x!["top"]![0]!["index"]!);
        Assert.Equal(files.Count, classified.Count);
        foreach (var f in files) Assert.True(expected[f] == classified[f], $"classify: {f}");

        // vit run on image inputs: logits in file order.
        var npy = Path.Combine(_tmp, "logits.npy");
        (code, _, err) = CliRunner.Run("run", "--checkpoint", model, "--input", testDir, "--output", npy);
        Assert.True(code == 0, err);
        var logits = Npy.Read(npy);
        var order = Classifier.ExpandImagePaths([testDir]);
        Assert.Equal([order.Count, 3], logits.Shape);
        for (int i = 0; i < order.Count; i++) Assert.True(expected[order[i]] == ArgMax(logits.Data.AsSpan(i * 3, 3)), $"run: {order[i]}");

        // vit serve: the HTTP service over its batching classifier; /v1/model shows the record.
        using (var classifier = Classifier.Load(model))
        {
            await using var batching = new BatchingClassifier(classifier, maxBatch: 4);
            var url = $"http://127.0.0.1:{FreePort()}";
            await using var app = ClassifierServer.Build(batching, url);
            await app.StartAsync();
            using var http = new HttpClient { BaseAddress = new Uri(url) };
            var served = await Task.WhenAll(files.Select(async f =>
            {
                var r = await http.PostAsync("/v1/classify?top_k=1", new ByteArrayContent(await File.ReadAllBytesAsync(f)));
                Assert.Equal(HttpStatusCode.OK, r.StatusCode);
                return (int)JsonNode.Parse(await r.Content.ReadAsStringAsync())!["top"]![0]!["index"]!;
            }));
            for (int i = 0; i < files.Count; i++) Assert.True(expected[files[i]] == served[i], $"serve: {files[i]}");
            var described = JsonNode.Parse(await http.GetStringAsync("/v1/model"))!["metadata"]!;
            Assert.Equal(md.ToJson(), ModelMetadata.Parse(described.ToJsonString(), "/v1/model").ToJson());
            await app.StopAsync();
        }

        // vit inspect: images preprocessed with the record's recipe, which its report states.
        var inspected = Path.Combine(_tmp, "inspect");
        (code, _, err) = CliRunner.Run("inspect", "--checkpoint", model, "--output", inspected, "--image", files[0], "--components", "4");
        Assert.True(code == 0, err);
        var report = JsonNode.Parse(File.ReadAllText(Path.Combine(inspected, "inspection.json")))!;
        Assert.Equal(md.ToJson(), ModelMetadata.Parse(report["metadata"]!.ToJsonString(), "inspection.json").ToJson());

        // vit export: the record in metadata_props; ONNX Runtime on images preprocessed as the record says.
        var onnx = Path.Combine(_tmp, "m.onnx");
        (code, _, err) = CliRunner.Run("export", "--checkpoint", model, "--output", onnx);
        Assert.True(code == 0, err);
        var fromOnnx = ModelMetadata.Parse(OnnxMetadata.Read(onnx)[ModelMetadata.MetadataKey], onnx);
        Assert.Equal(md.ToJson(), fromOnnx.ToJson());
                using var batch = fromOnnx.Preprocess!.ApplyBatch(files.Select(f => ImageCodecs.Decode(f)).ToList());
        var ort = RunOrt(onnx, new HostArray(batch.Shape, batch.ToArray()));
        for (int i = 0; i < files.Count; i++) Assert.True(expected[files[i]] == ArgMax(ort.Data.AsSpan(i * 3, 3)), $"onnx: {files[i]}");
    }

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    private HostArray RunOrt(string model, HostArray input) => Export.OnnxExportTests.RunOrt(model, input, _tmp);
}
