using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using VitSharp.Checkpoints;
using VitSharp.Cli.Serving;
using VitSharp.Data.Codecs;
using VitSharp.Inference;
using VitSharp.Models;

namespace VitSharp.Tests.Cli;

/// <summary>The HTTP service on a loopback port: same answers as the Classifier, typed errors for bad requests.</summary>
public class ServeTests
{
    internal static readonly string ImagePath = Path.Combine(AppContext.BaseDirectory, "Data", "images", "chelsea_crop128x96.png");

    /// <summary>A loopback port nothing listens on right now.</summary>
    internal static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    [Fact]
    public async Task ClassifyEmbedAndErrors()
    {
        using var classifier = Classifier.Load(TestData.Small("vit_tiny48", "model.safetensors"), new LoadOptions { Heads = 2 },
            labels: Enumerable.Range(0, 10).Select(i => $"c{i}").ToArray());
        await using var batching = new BatchingClassifier(classifier, maxBatch: 4);
        var url = $"http://127.0.0.1:{FreePort()}";
        await using var app = ClassifierServer.Build(batching, url);
        await app.StartAsync();
        using var http = new HttpClient { BaseAddress = new Uri(url) };

        var bytes = await File.ReadAllBytesAsync(ImagePath);
        var expected = classifier.Run([ImageCodecs.Decode(ImagePath)], OutputKind.Logits).Data;
        int best = Array.IndexOf(expected, expected.Max());

        // Several concurrent requests are batched together and each gets its own image's answer.
        var responses = await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => http.PostAsync("/v1/classify?top_k=3", new ByteArrayContent(bytes))));
        foreach (var r in responses)
        {
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            var top = JsonNode.Parse(await r.Content.ReadAsStringAsync())!["top"]!.AsArray();
            Assert.Equal(3, top.Count);
            Assert.Equal(best, (int)top[0]!["index"]!);
            Assert.Equal($"c{best}", (string?)top[0]!["label"]);
            Assert.Equal(expected[best], (float)top[0]!["logit"]!, 4);
        }

        using var form = new MultipartFormDataContent();
        var file = new ByteArrayContent(bytes);
        file.Headers.ContentType = new MediaTypeHeaderValue("image/png");
        form.Add(file, "image", "cat.png");
        var embed = await http.PostAsync("/v1/embed", form);
        Assert.Equal(HttpStatusCode.OK, embed.StatusCode);
        var features = JsonNode.Parse(await embed.Content.ReadAsStringAsync())!["embedding"]!.AsArray().Select(v => (float)v!).ToArray();
        var pooled = classifier.Run([ImageCodecs.Decode(ImagePath)], OutputKind.Pooled).Data;
        Assert.Equal(pooled.Length, features.Length);
        Assert.Equal(pooled, features, (a, b) => Math.Abs(a - b) < 1e-5f);

        var bad = await http.PostAsync("/v1/classify", new ByteArrayContent("not an image"u8.ToArray()));
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("unknown image format", (string?)JsonNode.Parse(await bad.Content.ReadAsStringAsync())!["error"]);
        var empty = await http.PostAsync("/v1/classify", new ByteArrayContent([]));
        Assert.Equal(HttpStatusCode.BadRequest, empty.StatusCode);
        var truncated = await http.PostAsync("/v1/classify", new ByteArrayContent(bytes[..(bytes.Length / 2)]));
        Assert.Equal(HttpStatusCode.BadRequest, truncated.StatusCode);

        var model = JsonNode.Parse(await http.GetStringAsync("/v1/model"))!;
        Assert.Equal(10, (int)model["config"]!["num_classes"]!);
        Assert.Equal("ok", await http.GetStringAsync("/healthz"));
        await app.StopAsync();
    }
}
