using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;
using VitSharp.Data.Codecs;
using VitSharp.Inference;
using VitSharp.Models;

namespace VitSharp.Cli.Serving;

/// <summary>
/// The HTTP service: POST an image (raw body or multipart field "image") to /v1/classify or /v1/embed; GET /v1/model,
/// /healthz. Bad images get 400 with the decoder's message; nothing a client sends can stop the process.
/// </summary>
public static class ClassifierServer
{
    public const long MaxImageBytes = 32L << 20;

    public static WebApplication Build(BatchingClassifier model, string urls)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls(urls);
        builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = MaxImageBytes);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        var app = builder.Build();
        var c = model.Classifier;

        app.MapGet("/healthz", () => Results.Text("ok"));
        app.MapGet("/v1/model", () => Results.Text(new JsonObject
        {
            ["checkpoint"] = c.Checkpoint.Path,
            ["format"] = c.Checkpoint.Format,
            ["config"] = c.Model.Config.ToJson(),
            ["recipe"] = JsonNode.Parse(c.Recipe.ToJson()),
            ["labels"] = c.Labels?.Length ?? 0,
            ["metadata"] = c.Metadata.ToJsonObject(),
        }.ToJsonString(), "application/json"));

        app.MapPost("/v1/classify", async (HttpRequest req) =>
        {
            int topK = int.TryParse(req.Query["top_k"], out var k) && k > 0 ? k : 5;
            if (c.Model.Config.NumClasses == 0) return Error(400, "this model has no classifier head: use /v1/embed");
            var (image, error) = await ReadImage(req);
            if (error is not null) return error;
            var logits = await model.RunAsync(image!, OutputKind.Logits, req.HttpContext.RequestAborted);
            var top = Softmax.TopK(logits, topK).Select(p => (JsonNode)new JsonObject
            {
                ["index"] = p.Index, ["label"] = c.Labels?[p.Index], ["probability"] = p.Probability, ["logit"] = logits[p.Index],
            });
            return Results.Text(new JsonObject { ["top"] = new JsonArray(top.ToArray()) }.ToJsonString(), "application/json");
        });

        app.MapPost("/v1/embed", async (HttpRequest req) =>
        {
            var (image, error) = await ReadImage(req);
            if (error is not null) return error;
            var features = await model.RunAsync(image!, OutputKind.Pooled, req.HttpContext.RequestAborted);
            return Results.Text(new JsonObject { ["embedding"] = new JsonArray(features.Select(v => (JsonNode)v).ToArray()) }.ToJsonString(), "application/json");
        });
        return app;
    }

    private static async Task<(Data.Image?, IResult?)> ReadImage(HttpRequest req)
    {
        byte[] bytes;
        string name;
        try
        {
            if (req.HasFormContentType)
            {
                var form = await req.ReadFormAsync();
                var file = form.Files.GetFile("image") ?? form.Files.FirstOrDefault();
                if (file is null) return (null, Error(400, "multipart request without an image file"));
                using var ms = new MemoryStream();
                await file.CopyToAsync(ms);
                (bytes, name) = (ms.ToArray(), file.FileName);
            }
            else
            {
                using var ms = new MemoryStream();
                await req.Body.CopyToAsync(ms);
                (bytes, name) = (ms.ToArray(), "request body");
            }
        }
        catch (BadHttpRequestException e) { return (null, Error(413, e.Message)); }
        if (bytes.Length == 0) return (null, Error(400, "empty request body: POST the image bytes"));
        try { return (ImageCodecs.Decode(bytes, name), null); }
        catch (ImageFormatException e) { return (null, Error(400, e.Message)); }
    }

    private static IResult Error(int status, string message) =>
        Results.Text(new JsonObject { ["error"] = message }.ToJsonString(), "application/json", statusCode: status);
}

internal static class Softmax
{
    public static IEnumerable<(int Index, float Probability)> TopK(float[] logits, int k)
    {
        float max = logits.Max();
        double sum = logits.Sum(v => Math.Exp(v - max));
        return logits.Select((v, i) => (i, (float)(Math.Exp(v - max) / sum))).OrderByDescending(t => t.Item2).Take(k);
    }
}
