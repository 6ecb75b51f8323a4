using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Net.Http.Headers;
using OpenTelemetry.Metrics;
using VitSharp.Checkpoints;
using VitSharp.Data.Codecs;
using VitSharp.Inference;
using VitSharp.Models;

namespace VitSharp.Cli.Serving;

/// <summary>The limits that bound what requests can make the service hold in memory.</summary>
public sealed record ServeOptions
{
    /// <summary>Largest request body (raw image or whole multipart form), 32 MiB by default.</summary>
    public long MaxBodyBytes { get; init; } = 32L << 20;
    /// <summary>Largest width × height decoded (40 megapixels by default).</summary>
    public long MaxPixels { get; init; } = 40_000_000;
    /// <summary>Requests decoding and preprocessing at once (the core count by default); the others wait.</summary>
    public int MaxConcurrent { get; init; } = Environment.ProcessorCount;
    /// <summary>Preprocessed images (model-sized inputs) waiting for or in a forward pass (64 by default); further
    /// requests wait before decoding. Batches gather from these, so keep it at least --max-batch.</summary>
    public int MaxQueued { get; init; } = 64;
    /// <summary>Largest number of multipart form fields and files.</summary>
    public int MaxFormFields { get; init; } = 1024;
    /// <summary>Longest a client may take to send its request line and headers (10 s by default); then the connection
    /// is closed, so a slowloris client holds a connection for at most this long.</summary>
    public TimeSpan RequestHeadersTimeout { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>Slowest a request body may arrive, in bytes a second averaged after <see cref="BodyGracePeriod"/>
    /// (Kestrel's 240 B/s by default); a slower body is answered 408 and its connection closed.</summary>
    public double MinBodyBytesPerSecond { get; init; } = 240;
    /// <summary>How long a request body may arrive slower than <see cref="MinBodyBytesPerSecond"/> (5 s by default).</summary>
    public TimeSpan BodyGracePeriod { get; init; } = TimeSpan.FromSeconds(5);
    /// <summary>Most labels in one /v1/zeroshot request (1000 by default).</summary>
    public int MaxLabels { get; init; } = 1000;
    /// <summary>Most prompts (labels × templates) one /v1/zeroshot label set makes the text tower embed (20000 by default).</summary>
    public int MaxPrompts { get; init; } = 20_000;
    /// <summary>Most texts in one /v1/embed-text request (256 by default).</summary>
    public int MaxTexts { get; init; } = 256;
    /// <summary>Longest label, template or text, in UTF-16 characters (1000 by default; the tokenizer truncates to the
    /// text tower's context anyway).</summary>
    public int MaxTextChars { get; init; } = 1000;
    /// <summary>Label sets (labels × templates) whose text embeddings are kept, least recently used evicted (64 by
    /// default): at most LabelCacheSets × MaxLabels × dim × 4 bytes.</summary>
    public int LabelCacheSets { get; init; } = 64;
    /// <summary>Where the one line per request goes (stdout by default; null: nowhere).</summary>
    public TextWriter? Log { get; init; } = Console.Out;
}

/// <summary>
/// The HTTP service: POST an image (raw body of any content type, sniffed from its bytes; multipart field "image";
/// or JSON <c>{"image": BASE64}</c>)
/// to /v1/classify or /v1/embed; with a two-tower model (CLIP, SigLIP) also to /v1/zeroshot with labels, and JSON
/// <c>{"texts": [...]}</c> to /v1/embed-text; GET /v1/model, /healthz (liveness), /readyz (model loaded and warmed), /metrics
/// (Prometheus text: <see cref="ServeMetrics"/> and ASP.NET Core's meters). Bad requests get 400/413/415 with <c>{"error": "..."}</c>;
/// nothing a client sends can stop the process.
/// </summary>
public static class ClassifierServer
{
    private const string BatchKey = "vitsharp.batch";
    private const string NotTwoTower = "this model is not a two-tower model: serve -c a CLIP or SigLIP folder for /v1/zeroshot and /v1/embed-text";

    /// <summary>The response header of /v1/zeroshot saying whether the label set's text embeddings were cached: hit or miss.</summary>
    public const string LabelCacheHeader = "X-Label-Cache";

    /// <summary>The service over a loaded model: <c>StartAsync</c> returns once the model is warmed and /readyz is 200.</summary>
    public static WebApplication Build(BatchingClassifier model, string urls, ServeOptions? options = null) =>
        Build(Task.FromResult(model), urls, options);

    /// <summary>
    /// The service over a model still loading: it listens at once (/healthz 200), answers 503 on /readyz and the model
    /// endpoints until <paramref name="model"/> has completed and one warm-up batch has run, then serves. A model that
    /// fails to load or warm keeps /readyz at 503 with the reason; <see cref="ServeReadiness.Ready"/> carries the failure.
    /// </summary>
    public static WebApplication Build(Task<BatchingClassifier> model, string urls, ServeOptions? options = null)
    {
        var o = options ?? new ServeOptions();
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls(urls);
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Limits.MaxRequestBodySize = o.MaxBodyBytes;
            k.Limits.RequestHeadersTimeout = o.RequestHeadersTimeout;
            k.Limits.MinRequestBodyDataRate = new Microsoft.AspNetCore.Server.Kestrel.Core.MinDataRate(o.MinBodyBytesPerSecond, o.BodyGracePeriod);
        });
        builder.Logging.ClearProviders();
        builder.Services.AddMetrics();
        builder.Services.AddSingleton(sp => new ServeMetrics(sp.GetRequiredService<IMeterFactory>()));
        builder.Services.AddSingleton(sp => new ServeReadiness(model, sp.GetRequiredService<ServeMetrics>()));
        builder.Services.AddHostedService(sp => sp.GetRequiredService<ServeReadiness>());
        builder.Services.AddOpenTelemetry().WithMetrics(m => m
            .AddMeter(ServeMetrics.MeterName)
            .AddAspNetCoreInstrumentation()
            // every scrape reads the instruments afresh (the exporter's default caches an answer for 300 ms)
            .AddPrometheusExporter(p => p.ScrapeResponseCacheDurationMilliseconds = 0));
        // Meters of one name are process-wide: export only this host's (made by its IMeterFactory), so two services in
        // one process (tests, an app hosting several) each count their own requests.
        builder.Services.ConfigureOpenTelemetryMeterProvider((sp, m) =>
        {
            var factory = sp.GetRequiredService<IMeterFactory>();
            m.AddView(i => i.Meter.Scope is { } scope && !ReferenceEquals(scope, factory) ? MetricStreamConfiguration.Drop : null);
        });
        var app = builder.Build();
        var metrics = app.Services.GetRequiredService<ServeMetrics>();
        var readiness = app.Services.GetRequiredService<ServeReadiness>();
        var gate = new SemaphoreSlim(Math.Max(1, o.MaxConcurrent));
        var queued = new SemaphoreSlim(Math.Max(1, o.MaxQueued));
        var decode = DecodeOptions.Default with { MaxPixels = o.MaxPixels, MaxFileBytes = o.MaxBodyBytes };
        // Made once the model has loaded (only two-tower models have one).
        var labelCache = new Lazy<LabelSetCache?>(() => model.Result.TwoTower is { } t ? new LabelSetCache(t, o.LabelCacheSets) : null);

        app.Use(async (ctx, next) =>
        {
            var sw = Stopwatch.StartNew();
            try { await next(ctx); }
            catch (Exception e) when (!ctx.Response.HasStarted)
            {
                var (status, message) = e switch
                {
                    BadHttpRequestException b => (b.StatusCode, b.Message),
                    InvalidDataException or IOException => (400, "malformed request: " + e.Message),
                    OperationCanceledException => (499, "request aborted"),
                    _ => (500, "internal error: " + e.Message),
                };
                ctx.Response.Clear();
                ctx.Response.StatusCode = status;
                ctx.Response.ContentType = "application/json";
                await ctx.Response.WriteAsync(new JsonObject { ["error"] = OneLine(message) }.ToJsonString());
            }
            finally
            {
                var ms = sw.Elapsed.TotalMilliseconds;
                var route = (ctx.GetEndpoint() as RouteEndpoint)?.RoutePattern.RawText ?? "other";
                metrics.Request(route, ctx.Response.StatusCode, ms);
                var batch = ctx.Items.TryGetValue(BatchKey, out var b) ? b : "-";
                o.Log?.WriteLine($"{ctx.Request.Method} {ctx.Request.Path} {ctx.Response.StatusCode} {ms:F1}ms batch={batch}");
            }
        });

        app.MapGet("/healthz", () => Results.Text("ok"));
        app.MapGet("/readyz", () => readiness.Ready.IsCompletedSuccessfully ? Results.Text("ready")
            : Error(503, readiness.Ready.Exception is { } e ? "not ready: " + (e.InnerException ?? e).Message : "not ready: the model is loading"));
        app.MapPrometheusScrapingEndpoint("/metrics");
        app.MapGet("/openapi.json", () => Results.Text(OpenApi(o), "application/json"));
        app.MapGet("/v1/model", () =>
        {
            if (NotReady() is { } wait) return wait;
            var c = model.Result.Classifier;
            var answer = new JsonObject
            {
                ["checkpoint"] = Path.GetFileName(c.Checkpoint.Path.TrimEnd('/', '\\')),
                ["format"] = c.Checkpoint.Format,
                ["config"] = c.Model.Config.ToJson(),
                ["recipe"] = JsonNode.Parse(c.Recipe.ToJson()),
                ["labels"] = c.Labels?.Length ?? 0,
                ["metadata"] = c.Metadata.ToJsonObject(),
            };
            if (model.Result.TwoTower is { } zs) answer["two_tower"] = TwoTowerJson(zs, labelCache.Value!, o);
            return Results.Text(answer.ToJsonString(), "application/json");
        });

        app.MapPost("/v1/classify", async (HttpRequest req) =>
        {
            if (NotReady() is { } wait) return wait;
            var c = model.Result.Classifier;
            if (model.Result.TwoTower is { } zs)
                return Error(400, $"this is a two-tower model ({zs.Family}) without a classifier head: use /v1/zeroshot with labels, or /v1/embed");
            int topK = 5;
            if (req.Query.TryGetValue("top_k", out var tk))
                if (!int.TryParse(tk, out topK) || topK <= 0)
                    return Error(400, $"top_k must be a positive integer, got '{tk}'");
            if (c.Model.Config.NumClasses == 0) return Error(400, "this model has no classifier head: use /v1/embed");
            return await Run(req, OutputKind.Logits, (logits, _) => new JsonObject
            {
                ["top"] = new JsonArray(Softmax.TopK(logits, topK).Select(p => (JsonNode)new JsonObject
                {
                    ["index"] = p.Index, ["label"] = c.Labels?[p.Index], ["probability"] = p.Probability, ["logit"] = logits[p.Index],
                }).ToArray()),
            });
        });

        // A two-tower model's /v1/embed is its image embedding (projected and normalised, as `vit embed IMAGE` prints).
        app.MapPost("/v1/embed", (HttpRequest req) => NotReady() is { } wait ? Task.FromResult(wait)
            : Run(req, model.Result.TwoTower is null ? OutputKind.Pooled : BatchingClassifier.ImageEmbeddingKind, (features, _) =>
            {
                if (model.Result.TwoTower is not null) Normalize(features);
                return new JsonObject { ["embedding"] = new JsonArray(features.Select(v => (JsonNode)v).ToArray()) };
            }));

        app.MapPost("/v1/zeroshot", async (HttpRequest req) =>
        {
            if (NotReady() is { } wait) return wait;
            if (model.Result.TwoTower is not { } zs) return Error(400, NotTwoTower);
            var body = await ReadBody(req, o, ZeroShotRequest.JsonKeys);
            if (body.Error is not null) return body.Error;
            var (q, bad) = ZeroShotRequest.Parse(req.Query, body.Form, body.Json, o);
            if (q is null) return Error(400, bad!);
            // The label set's text embeddings (cached, or computed while the image decodes and runs).
            var (text, hit) = labelCache.Value!.Get(q.Labels, q.Templates);
            metrics.LabelCache(hit);
            req.HttpContext.Response.Headers[LabelCacheHeader] = hit ? "hit" : "miss";
            return await RunImage(req, body, BatchingClassifier.ImageEmbeddingKind, (features, name) =>
            {
                Normalize(features);
                var scores = zs.Scores(zs.Logits(new HostArray([1, features.Length], features), text.GetAwaiter().GetResult()), q.Labels, q.TopK)[0];
                return Cli.TopJson(name, scores.Select(p => (p.Index, (string?)p.Label, p.Probability, p.Logit)));
            }, text);
        });

        app.MapPost("/v1/embed-text", async (HttpRequest req) =>
        {
            if (NotReady() is { } wait) return wait;
            if (model.Result.TwoTower is not { } zs) return Error(400, NotTwoTower);
            if (!MediaTypeHeaderValue.TryParse(req.ContentType, out var mt) || !mt.MediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase))
                return Error(415, $"unsupported content type '{ZeroShotRequest.Clip(req.ContentType ?? "(none)")}': POST application/json {{\"texts\": [\"a photo of a cat\"]}}");
            var (bytes, error) = await ReadAll(req, o);
            if (error is not null) return error;
            JsonObject? json;
            try { json = JsonNode.Parse(bytes) as JsonObject; }
            catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException or ArgumentException)
            { return Error(400, "malformed JSON: " + e.Message); }
            if (json is null) return Error(400, "the body must be a JSON object {\"texts\": [...]}");
            string[]? texts;
            string? bad;
            try { (texts, bad) = ZeroShotRequest.ParseTexts(json, o); }
            catch (Exception e) when (e is InvalidOperationException or ArgumentException) { return Error(400, "malformed JSON: " + e.Message); }
            if (texts is null) return Error(400, bad!);
            var answer = await Task.Run(() => ZeroShotJsonOutput.Embeddings(zs, texts, [], []), req.HttpContext.RequestAborted);
            return Results.Text(answer.ToJsonString(), "application/json");
        });
        return app;

        IResult? NotReady() => readiness.Ready.IsCompletedSuccessfully ? null : Error(503, "not ready: the model is loading (GET /readyz)");

        async Task<IResult> Run(HttpRequest req, OutputKind kind, Func<float[], string, JsonObject> answer)
        {
            var body = await ReadBody(req, o, null);
            return body.Error ?? await RunImage(req, body, kind, answer, null);
        }

        // The image of a read body through decode, preprocessing and one batched forward pass; answer gets the output
        // and the image's name. <paramref name="before"/> (the label set's text embeddings) is awaited before answering.
        async Task<IResult> RunImage(HttpRequest req, Body body, OutputKind kind, Func<float[], string, JsonObject> answer, Task? before)
        {
            var bytes = body.Bytes;
            // Two bounds: at most MaxConcurrent requests decode and preprocess at once (full-size decoded images), and at
            // most MaxQueued preprocessed (model-sized) inputs wait for or are in a forward pass; the gate is released
            // before the forward, so waiting inputs gather into batches of up to --max-batch.
            await queued.WaitAsync(req.HttpContext.RequestAborted);
            try
            {
                float[] input;
                await gate.WaitAsync(req.HttpContext.RequestAborted);
                try
                {
                    Data.Image image;
                    try { image = ImageCodecs.Decode(bytes!, body.Name!, decode); }
                    catch (ImageFormatException e) when (e.Message.Contains("exceeds the limit of"))
                    { return Error(413, e.Message + " (serve --max-pixels)"); }
                    catch (ImageFormatException e) { return Error(400, e.Message); }
                    bytes = null;
                    input = model.Result.Prepare(image);
                }
                finally { gate.Release(); }
                var (result, batch) = await model.Result.RunPreparedAsync(input, kind, req.HttpContext.RequestAborted);
                req.HttpContext.Items[BatchKey] = batch;
                if (before is not null) await before.WaitAsync(req.HttpContext.RequestAborted);
                return Results.Text(answer(result, body.Name!).ToJsonString(), "application/json");
            }
            finally { queued.Release(); }
        }
    }

    /// <summary>A request's image (its bytes and a name for answers), the form or JSON object it came in, or the error.</summary>
    private sealed record Body(byte[]? Bytes, string? Name, IResult? Error, IFormCollection? Form = null, JsonObject? Json = null)
    {
        public static Body Fail(IResult error) => new(null, null, error);
    }

    /// <summary>The image of a request: raw bytes, multipart file "image", or JSON {"image": BASE64}. With
    /// <paramref name="jsonKeys"/>, a JSON body is an object of those keys only (others: 400); without, other keys are
    /// ignored (classify, embed).</summary>
    private static async Task<Body> ReadBody(HttpRequest req, ServeOptions o, string[]? jsonKeys)
    {
        try
        {
            var type = req.ContentType;
            if (type is not null && type.StartsWith("multipart/", StringComparison.OrdinalIgnoreCase))
            {
                if (!MediaTypeHeaderValue.TryParse(type, out var mt) || !mt.MediaType.Equals("multipart/form-data", StringComparison.OrdinalIgnoreCase))
                    return Body.Fail(Error(415, $"unsupported content type '{type}': POST the image bytes or multipart/form-data"));
                if (HeaderUtilities.RemoveQuotes(mt.Boundary).Length == 0)
                    return Body.Fail(Error(400, "multipart/form-data without a boundary"));
                req.HttpContext.Features.Set<IFormFeature>(new FormFeature(req, new FormOptions
                {
                    ValueCountLimit = o.MaxFormFields,
                    MultipartBodyLengthLimit = o.MaxBodyBytes,
                }));
                IFormCollection form;
                try { form = await req.ReadFormAsync(req.HttpContext.RequestAborted); }
                catch (InvalidDataException e) when (e.Message.Contains("limit"))
                {
                    req.HttpContext.Response.Headers.Connection = "close"; // the rest of the body is left unread
                    return Body.Fail(Error(413, $"multipart form over its limits ({o.MaxFormFields} fields, {o.MaxBodyBytes} bytes): {e.Message}"));
                }
                catch (Exception e) when (e is InvalidDataException or IOException)
                { return Body.Fail(Error(400, "malformed multipart body: " + e.Message)); }
                var file = form.Files.GetFile("image") ?? form.Files.FirstOrDefault();
                if (file is null) return Body.Fail(Error(400, "multipart request without an image file (field \"image\")"));
                using var ms = new MemoryStream();
                await file.CopyToAsync(ms);
                return new Body(ms.ToArray(), string.IsNullOrEmpty(file.FileName) ? "image" : file.FileName, null, Form: form);
            }
            // Any other content type (curl --data-binary sends application/x-www-form-urlencoded): the raw bytes,
            // sniffed by the decoder.
            var (bytes, error) = await ReadAll(req, o);
            if (error is not null) return Body.Fail(error);
            if (ImageCodecs.FindDecoder(bytes) is null && LooksLikeJson(bytes)) return FromJson(bytes, jsonKeys);
            return new Body(bytes, "request body", null);
        }
        catch (BadHttpRequestException e) when (e.StatusCode == 413) { return Body.Fail(TooLarge(req, o)); }
        catch (BadHttpRequestException e) { return Body.Fail(Error(e.StatusCode, e.Message)); }
    }

    /// <summary>The whole body, at most <see cref="ServeOptions.MaxBodyBytes"/>; empty is an error.</summary>
    private static async Task<(byte[] Bytes, IResult? Error)> ReadAll(HttpRequest req, ServeOptions o)
    {
        try
        {
            if (req.ContentLength > o.MaxBodyBytes) return ([], TooLarge(req, o));
            using var body = new MemoryStream();
            await req.Body.CopyToAsync(body, req.HttpContext.RequestAborted);
            if (body.Length > o.MaxBodyBytes) return ([], TooLarge(req, o));
            if (body.Length == 0) return ([], Error(400, "empty request body: POST the image bytes"));
            return (body.ToArray(), null);
        }
        catch (BadHttpRequestException e) when (e.StatusCode == 413) { return ([], TooLarge(req, o)); }
        catch (BadHttpRequestException e) { return ([], Error(e.StatusCode, e.Message)); }
    }

    /// <summary>An OpenAPI 3.0 description of the endpoints, their bodies and their error answers.</summary>
    public static string OpenApi(ServeOptions o)
    {
        static JsonObject Json(string description, JsonObject schema) =>
            new() { ["description"] = description, ["content"] = new JsonObject { ["application/json"] = new JsonObject { ["schema"] = schema } } };
        static JsonObject Ref(string name) => new() { ["$ref"] = $"#/components/schemas/{name}" };
        JsonObject Post(string summary, string result, JsonArray parameters) => new()
        {
            ["post"] = new JsonObject
            {
                ["summary"] = summary,
                ["parameters"] = parameters,
                ["requestBody"] = new JsonObject
                {
                    ["required"] = true,
                    ["description"] = $"the image: raw bytes of any content type (sniffed), multipart field \"image\", or JSON {{\"image\": BASE64}}; at most {o.MaxBodyBytes} bytes and {o.MaxPixels} pixels",
                    ["content"] = new JsonObject
                    {
                        ["application/octet-stream"] = new JsonObject { ["schema"] = new JsonObject { ["type"] = "string", ["format"] = "binary" } },
                        ["multipart/form-data"] = new JsonObject { ["schema"] = new JsonObject { ["type"] = "object", ["properties"] = new JsonObject { ["image"] = new JsonObject { ["type"] = "string", ["format"] = "binary" } } } },
                        ["application/json"] = new JsonObject { ["schema"] = new JsonObject { ["type"] = "object", ["required"] = new JsonArray("image"), ["properties"] = new JsonObject { ["image"] = new JsonObject { ["type"] = "string", ["format"] = "byte" } } } },
                    },
                },
                ["responses"] = new JsonObject
                {
                    ["200"] = Json("the result", Ref(result)),
                    ["400"] = Json("a malformed request or image", Ref("Error")),
                    ["413"] = Json("a body over the byte limit, an image over the pixel limit, or too many form fields", Ref("Error")),
                    ["415"] = Json("a multipart type other than form-data", Ref("Error")),
                    ["503"] = Json("the model is still loading (see /readyz)", Ref("Error")),
                },
            },
        };
        JsonObject ZeroShotPost()
        {
            var p = Post("two-tower models: one image's ranked free-text labels", "ZeroShot", new JsonArray(
                new JsonObject { ["name"] = "labels", ["in"] = "query", ["required"] = false, ["description"] = $"comma-separated labels (or a form field, or the JSON body's \"labels\"); 1 to {o.MaxLabels}, each at most {o.MaxTextChars} characters", ["schema"] = new JsonObject { ["type"] = "string" } },
                new JsonObject { ["name"] = "templates", ["in"] = "query", ["required"] = false, ["description"] = $"none (default), or a dataset of CLIP's prompts.md: its templates averaged per label; labels x templates at most {o.MaxPrompts}", ["schema"] = new JsonObject { ["type"] = "string", ["default"] = "none" } },
                new JsonObject { ["name"] = "top_k", ["in"] = "query", ["required"] = false, ["schema"] = new JsonObject { ["type"] = "integer", ["minimum"] = 1, ["default"] = 5 } }));
            var post = (JsonObject)p["post"]!;
            var body = (JsonObject)post["requestBody"]!;
            body["description"] = $"the image as for /v1/classify; the parameters in the query, as multipart fields, or in a JSON body {{\"image\": BASE64, \"labels\": [...], \"templates\": NAME or [...], \"top_k\": N}} (other keys and parameters are errors; each parameter from one place); at most {o.MaxBodyBytes} bytes and {o.MaxPixels} pixels";
            var json = (JsonObject)body["content"]!["application/json"]!["schema"]!;
            json["additionalProperties"] = false;
            var props = (JsonObject)json["properties"]!;
            props["labels"] = new JsonObject { ["oneOf"] = new JsonArray(new JsonObject { ["type"] = "array", ["items"] = new JsonObject { ["type"] = "string" }, ["maxItems"] = o.MaxLabels }, new JsonObject { ["type"] = "string" }) };
            props["templates"] = new JsonObject { ["oneOf"] = new JsonArray(new JsonObject { ["type"] = "string" }, new JsonObject { ["type"] = "array", ["items"] = new JsonObject { ["type"] = "string" } }) };
            props["top_k"] = new JsonObject { ["type"] = "integer", ["minimum"] = 1 };
            post["responses"]!["200"]!.AsObject()["headers"] = new JsonObject { [LabelCacheHeader] = new JsonObject { ["description"] = "hit: the label set's text embeddings were cached; miss: the text tower ran", ["schema"] = new JsonObject { ["type"] = "string", ["enum"] = new JsonArray("hit", "miss") } } };
            post["responses"]!["400"]!.AsObject()["description"] = "a malformed request or image, no labels, too many or too long labels, an unknown parameter or key, or not a two-tower model";
            return p;
        }
        var doc = new JsonObject
        {
            ["openapi"] = "3.0.3",
            ["info"] = new JsonObject { ["title"] = "vit serve", ["version"] = "1" },
            ["paths"] = new JsonObject
            {
                ["/v1/classify"] = Post("top-k classes of one image", "Classification", new JsonArray(new JsonObject
                {
                    ["name"] = "top_k", ["in"] = "query", ["required"] = false,
                    ["schema"] = new JsonObject { ["type"] = "integer", ["minimum"] = 1, ["default"] = 5 },
                })),
                ["/v1/embed"] = Post("the pooled features of one image (a two-tower model: its normalised, projected image embedding)", "Embedding", []),
                ["/v1/zeroshot"] = ZeroShotPost(),
                ["/v1/embed-text"] = new JsonObject
                {
                    ["post"] = new JsonObject
                    {
                        ["summary"] = "two-tower models: L2-normalised text embeddings and their token ids (the JSON `vit embed --text` prints)",
                        ["requestBody"] = new JsonObject
                        {
                            ["required"] = true,
                            ["description"] = $"{{\"texts\": [...]}}: 1 to {o.MaxTexts} strings of at most {o.MaxTextChars} characters; other keys are errors",
                            ["content"] = new JsonObject { ["application/json"] = new JsonObject { ["schema"] = new JsonObject
                            {
                                ["type"] = "object", ["required"] = new JsonArray("texts"), ["additionalProperties"] = false,
                                ["properties"] = new JsonObject { ["texts"] = new JsonObject { ["type"] = "array", ["minItems"] = 1, ["maxItems"] = o.MaxTexts, ["items"] = new JsonObject { ["type"] = "string", ["maxLength"] = o.MaxTextChars } } },
                            } } },
                        },
                        ["responses"] = new JsonObject
                        {
                            ["200"] = Json("the embeddings", Ref("TextEmbeddings")),
                            ["400"] = Json("malformed JSON, an unknown key, no texts, too many or too long texts, or not a two-tower model", Ref("Error")),
                            ["413"] = Json("a body over the byte limit", Ref("Error")),
                            ["415"] = Json("a content type other than application/json", Ref("Error")),
                            ["503"] = Json("the model is still loading (see /readyz)", Ref("Error")),
                        },
                    },
                },
                ["/v1/model"] = new JsonObject { ["get"] = new JsonObject { ["summary"] = "the model, its preprocessing and metadata", ["responses"] = new JsonObject { ["200"] = Json("the model", new JsonObject { ["type"] = "object" }) } } },
                ["/healthz"] = new JsonObject { ["get"] = new JsonObject { ["summary"] = "liveness", ["responses"] = new JsonObject { ["200"] = new JsonObject { ["description"] = "ok" } } } },
                ["/readyz"] = new JsonObject { ["get"] = new JsonObject { ["summary"] = "readiness: the model is loaded and warmed", ["responses"] = new JsonObject
                {
                    ["200"] = new JsonObject { ["description"] = "ready" },
                    ["503"] = Json("loading, or the model failed to load", Ref("Error")),
                } } },
                ["/metrics"] = new JsonObject { ["get"] = new JsonObject { ["summary"] = "Prometheus metrics: vitsharp_serve_* and ASP.NET Core's", ["responses"] = new JsonObject
                {
                    ["200"] = new JsonObject { ["description"] = "Prometheus text exposition", ["content"] = new JsonObject { ["text/plain"] = new JsonObject { ["schema"] = new JsonObject { ["type"] = "string" } } } },
                } } },
            },
            ["components"] = new JsonObject
            {
                ["schemas"] = new JsonObject
                {
                    ["Error"] = new JsonObject { ["type"] = "object", ["properties"] = new JsonObject { ["error"] = new JsonObject { ["type"] = "string" } } },
                    ["Classification"] = new JsonObject
                    {
                        ["type"] = "object",
                        ["properties"] = new JsonObject
                        {
                            ["top"] = new JsonObject
                            {
                                ["type"] = "array",
                                ["items"] = new JsonObject
                                {
                                    ["type"] = "object",
                                    ["properties"] = new JsonObject
                                    {
                                        ["index"] = new JsonObject { ["type"] = "integer" }, ["label"] = new JsonObject { ["type"] = "string", ["nullable"] = true },
                                        ["probability"] = new JsonObject { ["type"] = "number" }, ["logit"] = new JsonObject { ["type"] = "number" },
                                    },
                                },
                            },
                        },
                    },
                    ["ZeroShot"] = new JsonObject
                    {
                        ["type"] = "object",
                        ["description"] = "one image's ranked labels, as `vit zeroshot --json` prints them: CLIP's softmax over the labels, SigLIP's sigmoid of each logit",
                        ["properties"] = new JsonObject
                        {
                            ["image"] = new JsonObject { ["type"] = "string" },
                            ["top"] = new JsonObject { ["$ref"] = "#/components/schemas/Classification/properties/top" },
                        },
                    },
                    ["TextEmbeddings"] = new JsonObject
                    {
                        ["type"] = "object",
                        ["properties"] = new JsonObject
                        {
                            ["model"] = new JsonObject { ["type"] = "string" }, ["dim"] = new JsonObject { ["type"] = "integer" },
                            ["logit_scale"] = new JsonObject { ["type"] = "number" }, ["logit_bias"] = new JsonObject { ["type"] = "number" },
                            ["texts"] = new JsonObject { ["type"] = "array", ["items"] = new JsonObject { ["type"] = "object", ["properties"] = new JsonObject
                            {
                                ["text"] = new JsonObject { ["type"] = "string" },
                                ["input_ids"] = new JsonObject { ["type"] = "array", ["items"] = new JsonObject { ["type"] = "integer" } },
                                ["embedding"] = new JsonObject { ["type"] = "array", ["items"] = new JsonObject { ["type"] = "number" } },
                            } } },
                        },
                    },
                    ["Embedding"] = new JsonObject { ["type"] = "object", ["properties"] = new JsonObject { ["embedding"] = new JsonObject { ["type"] = "array", ["items"] = new JsonObject { ["type"] = "number" } } } },
                },
            },
        };
        return doc.ToJsonString();
    }

    private static bool LooksLikeJson(byte[] bytes)
    {
        foreach (var b in bytes)
            if (b is not ((byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n')) return b == (byte)'{';
        return false;
    }

    /// <summary>A JSON body <c>{"image": "BASE64"}</c> (with <paramref name="keys"/>: of those keys only): the decoded
    /// bytes and the object, or a 400 naming what is wrong.</summary>
    private static Body FromJson(byte[] bytes, string[]? keys)
    {
        string shape = keys is null ? "a JSON body must be {\"image\": \"BASE64\"}"
            : $"a JSON body must be {{\"image\": \"BASE64\"}} with optional {string.Join(", ", keys.Where(k => k != "image").Select(k => $"\"{k}\""))}";
        string? text;
        JsonObject? obj;
        try
        {
            // Invalid UTF-8 inside a string surfaces only when the string is read (InvalidOperationException).
            obj = JsonNode.Parse(bytes) as JsonObject;
            if (obj is not null && keys is not null)
                foreach (var (k, v) in obj)
                {
                    if (!keys.Contains(k)) return Body.Fail(Error(400, $"{shape}: unknown key \"{ZeroShotRequest.Clip(k)}\""));
                    _ = v?.ToJsonString(); // reads every string: bad UTF-8 is an error here, not later
                }
            text = obj?["image"] is JsonValue v2 && v2.TryGetValue<string>(out var t) ? t : null;
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException or ArgumentException)
        { return Body.Fail(Error(400, $"{shape}: {e.Message}")); }
        if (text is null) return Body.Fail(Error(400, $"{shape}: no string field \"image\""));
        var comma = text.StartsWith("data:", StringComparison.Ordinal) ? text.IndexOf(',') : -1;
        if (comma >= 0) text = text[(comma + 1)..];
        try { return new Body(Convert.FromBase64String(text), "JSON field \"image\"", null, Json: obj); }
        catch (FormatException) { return Body.Fail(Error(400, $"{shape}: field \"image\" is not base64")); }
    }

    /// <summary>/v1/model's description of a two-tower model: family, embedding width, logit scale (and bias), the
    /// text tower, the request limits and the label cache.</summary>
    private static JsonObject TwoTowerJson(ZeroShotModel m, LabelSetCache cache, ServeOptions o)
    {
        var t = m.Text.Config;
        var j = new JsonObject
        {
            ["family"] = m.Family,
            ["dim"] = m.EmbeddingDim,
            ["logit_scale"] = m.LogitScale,
            ["scores"] = m.Sigmoid ? "sigmoid" : "softmax",
            ["text"] = new JsonObject
            {
                ["context_length"] = m.Tokenizer.ContextLength, ["vocab_size"] = t.VocabSize, ["width"] = t.Width, ["depth"] = t.Depth,
                ["heads"] = t.Heads, ["tokenizer"] = m.Tokenizer.GetType().Name,
            },
            ["limits"] = new JsonObject
            {
                ["max_labels"] = o.MaxLabels, ["max_prompts"] = o.MaxPrompts, ["max_texts"] = o.MaxTexts, ["max_text_chars"] = o.MaxTextChars,
            },
            ["label_cache"] = new JsonObject { ["capacity"] = cache.Capacity, ["sets"] = cache.Count, ["hits"] = cache.Hits, ["misses"] = cache.Misses },
            ["templates"] = new JsonArray(["none", .. PromptTemplates.Names.Select(n => (JsonNode)n)]),
        };
        if (m.Sigmoid) j["logit_bias"] = m.LogitBias;
        return j;
    }

    private static void Normalize(float[] v) => ZeroShotModel.NormalizeRows(new HostArray([1, v.Length], v));

    /// <summary>413 for a body over the limit. The body is left unread, so Kestrel cannot drain it and drops the
    /// connection after answering: "Connection: close" says so, or a client reusing the connection has its next request
    /// cut off.</summary>
    private static IResult TooLarge(HttpRequest req, ServeOptions o)
    {
        req.HttpContext.Response.Headers.Connection = "close";
        return Error(413, $"request body over the limit of {o.MaxBodyBytes} bytes (serve --max-body)");
    }

    /// <summary>A one-line error answer (a message with line breaks keeps its first line).</summary>
    private static IResult Error(int status, string message) =>
        Results.Text(new JsonObject { ["error"] = OneLine(message) }.ToJsonString(), "application/json", statusCode: status);

    /// <summary>The first line of a message (an exception's can have several).</summary>
    private static string OneLine(string message) => message.Split('\n')[0].TrimEnd('\r');
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
