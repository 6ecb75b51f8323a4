using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using VitSharp.Checkpoints;
using VitSharp.Cli;
using VitSharp.Cli.Serving;
using VitSharp.Data.Codecs;
using VitSharp.Inference;
using VitSharp.Models;
using VitSharp.Tests.ZeroShot;

namespace VitSharp.Tests.Cli;

/// <summary>A theory over the transformers references in Data/zeroshot/; skipped, with the reason, without them.</summary>
public sealed class ZeroShotRefsTheoryAttribute : TheoryAttribute
{
    public ZeroShotRefsTheoryAttribute()
    {
        if (!File.Exists(Path.Combine(ZeroShotRefsFactAttribute.Dir, "meta.json")))
            Skip = "needs Data/zeroshot/ (transformers references: python3 tests/tools/make_zeroshot_refs.py BPE.gz OUT, then copy OUT/zeroshot there)";
    }
}

/// <summary>
/// serve over the tiny CLIP and SigLIP folders of Data/zeroshot: /v1/zeroshot and /v1/embed-text answer what the library
/// (and `vit zeroshot --json`, `vit embed --text`) computes and what transformers computed, the label-set cache hits on
/// a repeated set, bad requests get one-line 4xx answers, and the classifier routes know which kind of model they serve.
/// </summary>
public class ServeZeroShotTests
{
    private static string D(params string[] p) => Path.Combine([ZeroShotRefsFactAttribute.Dir, .. p]);
    private static readonly JsonObject Refs = (JsonObject)JsonNode.Parse(File.ReadAllText(D("refs.json")))!;
    private static string[] Texts => Refs["texts"]!.AsArray().Select(x => (string)x!).ToArray();
    private static string[] Images => Refs["images"]!.AsArray().Select(x => (string)x!).ToArray();

    /// <summary>A model behind a service on a loopback port, and a client of it.</summary>
    private sealed class Served : IAsyncDisposable
    {
        public required ZeroShotModel? Model { get; init; }
        public required Classifier? Classifier { get; init; }
        public required BatchingClassifier Batching { get; init; }
        public required WebApplication App { get; init; }
        public required HttpClient Http { get; init; }

        public async ValueTask DisposeAsync()
        {
            Http.Dispose();
            await App.StopAsync();
            await App.DisposeAsync();
            await Batching.DisposeAsync();
            Model?.Dispose();
            Classifier?.Dispose();
        }
    }

    private static async Task<Served> Serve(string family, ServeOptions? options = null)
    {
        var model = ZeroShotModel.Load(D(family + "_tiny"));
        var batching = new BatchingClassifier(model, maxBatch: 4);
        var url = $"http://127.0.0.1:{ServeTests.FreePort()}";
        var app = ClassifierServer.Build(batching, url, (options ?? new ServeOptions()) with { Log = null });
        await app.StartAsync();
        return new Served { Model = model, Classifier = null, Batching = batching, App = app, Http = new HttpClient { BaseAddress = new Uri(url) } };
    }

    private static ByteArrayContent Raw(byte[] bytes, string? type = null)
    {
        var c = new ByteArrayContent(bytes);
        if (type is not null) c.Headers.ContentType = MediaTypeHeaderValue.Parse(type);
        return c;
    }

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    private static string B64(byte[] bytes) => Convert.ToBase64String(bytes);

    private static string Q(IEnumerable<string> labels) => string.Join(",", labels.Select(Uri.EscapeDataString));

    private static async Task<(HttpResponseMessage Response, string Body)> Post(HttpClient http, string path, HttpContent content)
    {
        var r = await http.PostAsync(path, content);
        return (r, await r.Content.ReadAsStringAsync());
    }

    private static string CacheHeader(HttpResponseMessage r) => string.Join(",", r.Headers.GetValues(ClassifierServer.LabelCacheHeader));

    /// <summary>One image's request in each of the three ways a client can send it, and the name the answer gives it.</summary>
    private static (HttpContent Content, string Query, string Name) Request(int way, byte[] png, string file, string[] labels, int topK)
    {
        switch (way % 3)
        {
            case 0: return (Raw(png, "image/png"), $"?labels={Q(labels)}&top_k={topK}", "request body");
            case 1:
                var form = new MultipartFormDataContent();
                var f = new ByteArrayContent(png);
                f.Headers.ContentType = new MediaTypeHeaderValue("image/png");
                form.Add(f, "image", file);
                foreach (var l in labels) form.Add(new StringContent(l), "labels"); // a repeated field: one label each
                form.Add(new StringContent(topK.ToString()), "top_k");
                return (form, "", file);
            default:
                var body = new JsonObject { ["image"] = B64(png), ["labels"] = new JsonArray(labels.Select(l => (JsonNode)l).ToArray()), ["top_k"] = topK };
                return (Json(body.ToJsonString()), "", "JSON field \"image\"");
        }
    }

    [ZeroShotRefsTheory]
    [InlineData("clip")]
    [InlineData("siglip")]
    public async Task ZeroShotAnswersEqualTheLibraryAndTransformers(string family)
    {
        await using var s = await Serve(family);
        var m = s.Model!;
        var refs = SafeTensors.Read(D(family + "_refs.safetensors"));
        var want = refs["logits_per_image"];
        int nt = want.Shape[1];
        var texts = Texts;
        Assert.Equal(nt, texts.Length);
        // Labels are non-empty: the reference texts but the empty one.
        var picked = Enumerable.Range(0, nt).Where(j => texts[j].Length > 0).ToArray();
        Assert.True(picked.Length >= 6, "the reference texts changed");
        var labels = picked.Select(j => texts[j]).ToArray();
        var images = Images;
        int n = 0;
        for (int i = 0; i < images.Length; i++)
        {
            var png = await File.ReadAllBytesAsync(D("images", images[i]));
            var (content, query, name) = Request(i, png, images[i], labels, labels.Length);
            var (r, body) = await Post(s.Http, "/v1/zeroshot" + query, content);
            Assert.True(r.StatusCode == HttpStatusCode.OK, $"{images[i]}: {(int)r.StatusCode} {body}");
            Assert.Equal("application/json", r.Content.Headers.ContentType?.MediaType);
            // One label set for every image: the text tower ran for the first request only.
            Assert.Equal(i == 0 ? "miss" : "hit", CacheHeader(r));

            // The library (what `vit zeroshot --json` prints for this image), exactly.
            var image = ImageCodecs.Decode(png, images[i]);
            var lib = m.Classify([image], labels, null, labels.Length)[0];
            Assert.Equal(VitSharp.Cli.Cli.TopJson(name, lib.Select(p => (p.Index, (string?)p.Label, p.Probability, p.Logit))).ToJsonString(), body);

            // transformers' logits_per_image for the same image and texts. Our decoding and preprocessing of the square,
            // model-sized PNGs equals transformers' image processor (ZeroShotReferenceTests); wide.png is resized, and
            // resizes differ (that test's looser bound): it is held to the library above only.
            var top = JsonNode.Parse(body)!["top"]!.AsArray();
            Assert.Equal(labels.Length, top.Count);
            bool resized = image.Width != image.Height || image.Width != m.Image.Recipe.ImageSize;
            if (resized) continue;
            n++;
            var row = picked.Select(j => (double)want.Data[i * nt + j]).ToArray();
            double max = row.Max(), sum = row.Sum(v => Math.Exp(v - max));
            float prev = float.PositiveInfinity;
            foreach (var e in top)
            {
                int k = (int)e!["index"]!;
                Assert.Equal(labels[k], (string?)e["label"]);
                float logit = (float)e["logit"]!, p = (float)e["probability"]!;
                Assert.True(logit <= prev, "not ranked best first");
                prev = logit;
                Assert.True(Math.Abs(logit - row[k]) <= 1e-4 * Math.Max(1, Math.Abs(row[k])),
                    $"{family} {images[i]} '{labels[k]}': served logit {logit}, transformers {row[k]}");
                double wantP = m.Sigmoid ? 1 / (1 + Math.Exp(-row[k])) : Math.Exp(row[k] - max) / sum;
                Assert.True(Math.Abs(p - wantP) <= 1e-4, $"{family} {images[i]} '{labels[k]}': served probability {p}, from transformers' logits {wantP}");
            }
        }
        Assert.Equal(4, n); // the four square images were held to transformers

        // Prompt ensembling by name, a top_k below the label count, labels comma-separated in a JSON string.
        var png0 = await File.ReadAllBytesAsync(D("images", images[0]));
        var (r2, body2) = await Post(s.Http, "/v1/zeroshot", Json(new JsonObject
        {
            ["image"] = B64(png0), ["labels"] = "cat, dog ,bird", ["templates"] = "cifar10", ["top_k"] = 2,
        }.ToJsonString()));
        Assert.True(r2.StatusCode == HttpStatusCode.OK, body2);
        Assert.Equal("miss", CacheHeader(r2));
        var lib2 = m.Classify([ImageCodecs.Decode(png0, images[0])], ["cat", "dog", "bird"], PromptTemplates.Get("CIFAR10"), 2)[0];
        Assert.Equal(2, lib2.Count);
        Assert.Equal(VitSharp.Cli.Cli.TopJson("JSON field \"image\"", lib2.Select(p => (p.Index, (string?)p.Label, p.Probability, p.Logit))).ToJsonString(), body2);

        // Templates given as a JSON array are the same label set as the name that lists them.
        var (r3, body3) = await Post(s.Http, "/v1/zeroshot", Json(new JsonObject
        {
            ["image"] = B64(png0), ["labels"] = new JsonArray("cat", "dog", "bird"), ["top_k"] = 2,
            ["templates"] = new JsonArray(PromptTemplates.Get("CIFAR10").Select(t => (JsonNode)t).ToArray()),
        }.ToJsonString()));
        Assert.True(r3.StatusCode == HttpStatusCode.OK, body3);
        Assert.Equal("hit", CacheHeader(r3));
        Assert.Equal(body2, body3);
    }

    [ZeroShotRefsTheory]
    [InlineData("clip")]
    [InlineData("siglip")]
    public async Task EmbedTextEqualsTransformersAndTheLibrary(string family)
    {
        await using var s = await Serve(family);
        var texts = Texts;
        var body = new JsonObject { ["texts"] = new JsonArray(texts.Select(t => (JsonNode)t).ToArray()) };
        var (r, answer) = await Post(s.Http, "/v1/embed-text", Json(body.ToJsonString()));
        Assert.True(r.StatusCode == HttpStatusCode.OK, answer);
        Assert.Equal(ZeroShotJsonOutput.Embeddings(s.Model!, texts, [], []).ToJsonString(), answer);

        var want = SafeTensors.Read(D(family + "_refs.safetensors"))["text_embeds"];
        int d = want.Shape[1];
        var json = JsonNode.Parse(answer)!;
        Assert.Equal(family, (string?)json["model"]);
        Assert.Equal(d, (int)json["dim"]!);
        var rows = json["texts"]!.AsArray();
        Assert.Equal(texts.Length, rows.Count);
        for (int i = 0; i < texts.Length; i++)
        {
            Assert.Equal(texts[i], (string?)rows[i]!["text"]);
            Assert.Equal(s.Model!.Tokenizer.Encode(texts[i]), rows[i]!["input_ids"]!.AsArray().Select(x => (int)x!).ToArray());
            var e = rows[i]!["embedding"]!.AsArray().Select(x => (float)x!).ToArray();
            Assert.Equal(d, e.Length);
            for (int k = 0; k < d; k++)
                Assert.True(Math.Abs(e[k] - want.Data[i * d + k]) <= 1e-4, $"{family} text {i} embedding[{k}]: served {e[k]}, transformers {want.Data[i * d + k]}");
        }
    }

    [ZeroShotRefsFact]
    public async Task TheLabelCacheHitsEvictsAndCounts()
    {
        await using var s = await Serve("clip", new ServeOptions { LabelCacheSets = 2 });
        var png = await File.ReadAllBytesAsync(D("images", "gradient.png"));
        async Task<string> Ask(string labels)
        {
            var (r, body) = await Post(s.Http, $"/v1/zeroshot?labels={labels}", Raw(png, "image/png"));
            Assert.True(r.StatusCode == HttpStatusCode.OK, body);
            return CacheHeader(r);
        }
        Assert.Equal("miss", await Ask("cat,dog"));
        Assert.Equal("hit", await Ask("cat,dog"));
        Assert.Equal("hit", await Ask("cat, dog")); // the same labels once trimmed
        Assert.Equal("miss", await Ask("dog,cat")); // another order is another set (its answer's indices differ)
        Assert.Equal("miss", await Ask("bird")); // evicts cat,dog (least recently used)
        Assert.Equal("miss", await Ask("cat,dog"));
        Assert.Equal("hit", await Ask("bird"));

        var cache = JsonNode.Parse(await s.Http.GetStringAsync("/v1/model"))!["two_tower"]!["label_cache"]!;
        Assert.Equal(2, (int)cache["capacity"]!);
        Assert.Equal(2, (int)cache["sets"]!);
        Assert.Equal(3, (long)cache["hits"]!);
        Assert.Equal(4, (long)cache["misses"]!);
        var metrics = await s.Http.GetStringAsync("/metrics");
        Assert.Equal(3, ServeMetricsTests.Sample(metrics, "vitsharp_serve_label_cache_lookups_total", ("result", "hit")));
        Assert.Equal(4, ServeMetricsTests.Sample(metrics, "vitsharp_serve_label_cache_lookups_total", ("result", "miss")));
    }

    [ZeroShotRefsFact]
    public async Task BadRequestsGetOneLine4xxAnswers()
    {
        await using var s = await Serve("clip", new ServeOptions { MaxLabels = 3, MaxPrompts = 10, MaxTexts = 2, MaxTextChars = 20, MaxBodyBytes = 1 << 16 });
        var png = await File.ReadAllBytesAsync(D("images", "gradient.png"));
        var img = B64(png);
        var cases = new List<(string Path, Func<HttpContent> Content, int Status, string Says)>
        {
            ("/v1/zeroshot", () => Raw(png, "image/png"), 400, "no labels"),
            ("/v1/zeroshot?labels=,%20,", () => Raw(png, "image/png"), 400, "no labels"),
            ("/v1/zeroshot", () => Json($"{{\"image\": \"{img}\", \"labels\": []}}"), 400, "no labels"),
            ("/v1/zeroshot?labels=a,b,c,d", () => Raw(png, "image/png"), 400, "4 labels, over the limit of 3"),
            ("/v1/zeroshot", () => Json($"{{\"image\": \"{img}\", \"labels\": [\"a\", \"b\", \"c\", \"d\"]}}"), 400, "4 labels, over the limit of 3"),
            ("/v1/zeroshot?labels=" + new string('x', 21), () => Raw(png, "image/png"), 400, "label 0 is 21 characters, over the limit of 20"),
            ("/v1/zeroshot?labels=a,b&templates=CIFAR10", () => Raw(png, "image/png"), 400, "= 36 prompts, over the limit of 10"),
            ("/v1/zeroshot?labels=a&templates=/etc/passwd", () => Raw(png, "image/png"), 400, "templates '/etc/passwd': neither 'none' nor one of CLIP's prompts.md"),
            ("/v1/zeroshot", () => Json($"{{\"image\": \"{img}\", \"labels\": [\"a\"], \"templates\": [\"a photo\"]}}"), 400, "has no {} for the label"),
            ("/v1/zeroshot?labels=a&top_k=0", () => Raw(png, "image/png"), 400, "top_k must be a positive integer"),
            ("/v1/zeroshot", () => Json($"{{\"image\": \"{img}\", \"labels\": [\"a\"], \"top_k\": \"x\"}}"), 400, "top_k must be a positive integer, got '\"x\"'"),
            ("/v1/zeroshot?labels=a&topk=3", () => Raw(png, "image/png"), 400, "unknown query parameter 'topk'"),
            ("/v1/zeroshot", () => Json($"{{\"image\": \"{img}\", \"labels\": [\"a\"], \"extra\": 1}}"), 400, "unknown key \"extra\""),
            ("/v1/zeroshot", () => Json($"{{\"image\": \"{img}\", \"labels\": [\"a\"]"), 400, "a JSON body must be {\"image\": \"BASE64\"}"),
            ("/v1/zeroshot", () => Json($"{{\"image\": \"{img}\", \"labels\": [1]}}"), 400, "JSON \"labels\"[0] is not a string"),
            ("/v1/zeroshot", () => Json($"{{\"image\": \"{img}\", \"labels\": null}}"), 400, "JSON \"labels\" is null"),
            ("/v1/zeroshot?labels=a", () => Json($"{{\"image\": \"{img}\", \"labels\": [\"b\"]}}"), 400, "'labels' given twice"),
            ("/v1/zeroshot?top_k=2", () => Form(png, ("labels", "a"), ("top_k", "3")), 400, "'top_k' given twice (query and form)"),
            ("/v1/zeroshot", () => Form(png, ("labels", "a"), ("colour", "red")), 400, "unknown form field 'colour'"),
            ("/v1/zeroshot", () => Form(png, ("labels", "a"), ("image", "cat.png")), 400, "form field 'image' is text: send the image as a file part"),
            ("/v1/zeroshot?labels=a&a%0Ab=1", () => Raw(png, "image/png"), 400, "unknown query parameter 'a b'"),
            ("/v1/zeroshot?top_k=2&top_k=3&labels=a", () => Raw(png, "image/png"), 400, "query parameter 'top_k' given 2 times"),
            ("/v1/zeroshot", () => Json($"{{\"image\": \"{img}\", \"labels\": [\"a\\nb\"]}}"), 400, "label 0 'a b' has a control character"),
            ("/v1/zeroshot?labels=a%07b", () => Raw(png, "image/png"), 400, "has a control character"),
            ("/v1/zeroshot", () => Json($"{{\"image\": \"{img}\", \"labels\": [\"\\ud800x\"]}}"), 400, "missing low surrogate"),
            ("/v1/embed-text", () => Json("{\"texts\": [\"\\ud800x\"]}"), 400, "malformed JSON: Cannot read incomplete UTF-16 JSON text"),
            ("/v1/embed-text", () => Raw("{\"texts\": [\"a"u8.ToArray().Append((byte)0xFF).Concat("\"]}"u8.ToArray()).ToArray(), "application/json"), 400, "malformed JSON"),
            ("/v1/zeroshot?labels=a", () => Raw(png, "multipart/mixed; boundary=x"), 415, "unsupported content type"),
            ("/v1/zeroshot?labels=a", () => Raw("not an image"u8.ToArray(), "image/png"), 400, "unknown image format"),
            ("/v1/zeroshot?labels=a", () => Raw(new byte[(1 << 16) + 1], "image/png"), 413, "over the limit of 65536 bytes"),
            ("/v1/embed-text", () => Json("{\"texts\": [\"a\", \"b\", \"c\"]}"), 400, "3 texts, over the limit of 2"),
            ("/v1/embed-text", () => Json("{\"texts\": [\"" + new string('x', 21) + "\"]}"), 400, "text 0 is 21 characters, over the limit of 20"),
            ("/v1/embed-text", () => Json("{\"texts\": []}"), 400, "\"texts\" is empty"),
            ("/v1/embed-text", () => Json("{\"texts\": [\"a\"], \"model\": \"x\"}"), 400, "unknown JSON key \"model\""),
            ("/v1/embed-text", () => Json("{\"texts\": [\"a\""), 400, "malformed JSON"),
            ("/v1/embed-text", () => Json("[\"a\"]"), 400, "the body must be a JSON object"),
            ("/v1/embed-text", () => Json("{\"texts\": \"a\"}"), 400, "the body must have \"texts\": an array of strings"),
            ("/v1/embed-text", () => Json("{\"texts\": [7]}"), 400, "\"texts\"[0] is not a string"),
            ("/v1/embed-text", () => new StringContent("{\"texts\": [\"a\"]}", Encoding.UTF8, "text/plain"), 415, "unsupported content type 'text/plain; charset=utf-8'"),
            ("/v1/embed-text", () => Raw("{\"texts\": [\"a\"]}"u8.ToArray()), 415, "unsupported content type '(none)'"),
            ("/v1/embed-text", () => Json("{\"texts\": [\"" + new string('x', 1 << 16) + "\"]}"), 413, "over the limit of 65536 bytes"),
        };
        foreach (var (path, content, status, says) in cases)
        {
            var what = $"{path} {says}";
            HttpResponseMessage r;
            string body;
            try { (r, body) = await Post(s.Http, path, content()); }
            catch (HttpRequestException e) { throw new Xunit.Sdk.XunitException($"{what}: {e.Message} {e.InnerException?.Message}"); }
            Assert.True((int)r.StatusCode == status, $"{what}: {(int)r.StatusCode} {body}");
            Assert.Equal("application/json", r.Content.Headers.ContentType?.MediaType);
            var error = (string?)JsonNode.Parse(body)!["error"];
            Assert.NotNull(error);
            Assert.True(error.Contains(says, StringComparison.Ordinal), $"{what}: the error is '{error}'");
            Assert.DoesNotContain('\n', error);
            Assert.DoesNotContain('\r', error);
            Assert.DoesNotContain("   at ", error);
            Assert.DoesNotContain("Exception", error);
            // A body left unread closes the connection: the answer says so, so the client does not reuse it.
            if (status == 413) Assert.True(r.Headers.ConnectionClose, $"{what}: no Connection: close");
        }
        // A good request still works after them (the label set is new: a miss).
        var (ok, okBody) = await Post(s.Http, "/v1/zeroshot?labels=a,b", Raw(png, "image/png"));
        Assert.True(ok.StatusCode == HttpStatusCode.OK, okBody);
        Assert.Equal("miss", CacheHeader(ok));
    }

    private static MultipartFormDataContent Form(byte[] png, params (string Name, string Value)[] fields)
    {
        var form = new MultipartFormDataContent();
        var f = new ByteArrayContent(png);
        f.Headers.ContentType = new MediaTypeHeaderValue("image/png");
        form.Add(f, "image", "image.png");
        foreach (var (name, value) in fields) form.Add(new StringContent(value), name);
        return form;
    }

    [ZeroShotRefsTheory]
    [InlineData("clip")]
    [InlineData("siglip")]
    public async Task EmbedModelAndClassifyOnATwoTowerModel(string family)
    {
        await using var s = await Serve(family);
        var m = s.Model!;
        var png = await File.ReadAllBytesAsync(D("images", "noise.png"));

        // /v1/embed: the normalised projected image embedding, as `vit embed IMAGE` prints it.
        var (r, body) = await Post(s.Http, "/v1/embed", Raw(png, "image/png"));
        Assert.True(r.StatusCode == HttpStatusCode.OK, body);
        var got = JsonNode.Parse(body)!["embedding"]!.AsArray().Select(x => (float)x!).ToArray();
        var want = m.EmbedImages([ImageCodecs.Decode(png, "noise.png")]).Data;
        Assert.Equal(m.EmbeddingDim, got.Length);
        Assert.Equal(want, got);
        Assert.Equal(1.0, Math.Sqrt(got.Sum(v => (double)v * v)), 5);
        var lib = ZeroShotJsonOutput.Embeddings(m, [], ["noise.png"], [ImageCodecs.Decode(png, "noise.png")]);
        Assert.Equal(lib["images"]![0]!["embedding"]!.ToJsonString(), JsonNode.Parse(body)!["embedding"]!.ToJsonString());

        // /v1/model: the two towers.
        var model = JsonNode.Parse(await s.Http.GetStringAsync("/v1/model"))!;
        var t = model["two_tower"]!;
        Assert.Equal(family, (string?)t["family"]);
        Assert.Equal(m.EmbeddingDim, (int)t["dim"]!);
        Assert.Equal(m.LogitScale, (float)t["logit_scale"]!);
        Assert.Equal(m.Sigmoid ? "sigmoid" : "softmax", (string?)t["scores"]);
        if (m.Sigmoid) Assert.Equal(m.LogitBias, (float)t["logit_bias"]!);
        else Assert.Null(t["logit_bias"]);
        Assert.Equal(m.Tokenizer.ContextLength, (int)t["text"]!["context_length"]!);
        Assert.Equal(m.Text.Config.Depth, (int)t["text"]!["depth"]!);
        Assert.Equal(1000, (int)t["limits"]!["max_labels"]!);
        Assert.Equal(20000, (int)t["limits"]!["max_prompts"]!);
        Assert.Equal(256, (int)t["limits"]!["max_texts"]!);
        Assert.Equal(1000, (int)t["limits"]!["max_text_chars"]!);
        Assert.Equal(64, (int)t["label_cache"]!["capacity"]!);
        Assert.Equal(0, (int)t["label_cache"]!["sets"]!);
        var templates = t["templates"]!.AsArray().Select(x => (string)x!).ToArray();
        Assert.Equal("none", templates[0]);
        Assert.Contains("CIFAR10", templates);
        Assert.Equal(m.Image.Recipe.ImageSize, (int)model["config"]!["img_size"]!);

        // /v1/classify: no classifier head; the answer names the route that is.
        var (c, cBody) = await Post(s.Http, "/v1/classify", Raw(png, "image/png"));
        Assert.Equal(HttpStatusCode.BadRequest, c.StatusCode);
        var error = (string)JsonNode.Parse(cBody)!["error"]!;
        Assert.Contains("/v1/zeroshot", error);
        Assert.Contains(family, error);

        var openapi = JsonNode.Parse(await s.Http.GetStringAsync("/openapi.json"))!;
        Assert.NotNull(openapi["paths"]!["/v1/zeroshot"]!["post"]);
        Assert.NotNull(openapi["paths"]!["/v1/embed-text"]!["post"]);
    }

    [Fact]
    public async Task TheShippedClassifierRefusesTheTwoTowerRoutes()
    {
        var classifier = Classifier.Load(DefaultModel.BundledPath);
        var batching = new BatchingClassifier(classifier, maxBatch: 2);
        var url = $"http://127.0.0.1:{ServeTests.FreePort()}";
        var app = ClassifierServer.Build(batching, url, new ServeOptions { Log = null });
        await app.StartAsync();
        await using var s = new Served { Model = null, Classifier = classifier, Batching = batching, App = app, Http = new HttpClient { BaseAddress = new Uri(url) } };
        var png = await File.ReadAllBytesAsync(ServeTests.ImagePath);
        foreach (var (path, content) in new (string, HttpContent)[]
        {
            ("/v1/zeroshot?labels=cat,dog", Raw(png, "image/png")),
            ("/v1/embed-text", Json("{\"texts\": [\"a cat\"]}")),
        })
        {
            var (r, body) = await Post(s.Http, path, content);
            Assert.True(r.StatusCode == HttpStatusCode.BadRequest, $"{path}: {(int)r.StatusCode} {body}");
            Assert.Equal("this model is not a two-tower model: serve -c a CLIP or SigLIP folder for /v1/zeroshot and /v1/embed-text",
                (string?)JsonNode.Parse(body)!["error"]);
            Assert.False(r.Headers.Contains(ClassifierServer.LabelCacheHeader));
        }
        // The classifier routes are as they were.
        var model = JsonNode.Parse(await s.Http.GetStringAsync("/v1/model"))!;
        Assert.Null(model["two_tower"]);
        Assert.Equal(10, (int)model["labels"]!);
        var (c, cBody) = await Post(s.Http, "/v1/classify?top_k=1", Raw(png, "image/png"));
        Assert.True(c.StatusCode == HttpStatusCode.OK, cBody);
        var expected = classifier.Run([ImageCodecs.Decode(ServeTests.ImagePath)], OutputKind.Logits).Data;
        Assert.Equal(Array.IndexOf(expected, expected.Max()), (int)JsonNode.Parse(cBody)!["top"]![0]!["index"]!);
    }
}

/// <summary>`vit serve` on a two-tower folder: the classifier-only options are refused in one line before it listens.</summary>
[Collection("cli")]
public class ServeZeroShotCliTests
{
    [Theory]
    [InlineData("--labels", "cat,dog", "--labels is for classifier checkpoints")]
    [InlineData("--recipe", "timm", "--recipe is for classifier checkpoints")]
    [InlineData("--dtype", "int8", "--dtype int8 is for classifier checkpoints")]
    [InlineData("--max-labels", "0", "--max-labels, --max-prompts, --max-texts, --max-text-chars and --label-cache must be positive")]
    [InlineData("--label-cache", "-1", "--max-labels, --max-prompts, --max-texts, --max-text-chars and --label-cache must be positive")]
    public void ClassifierOptionsOnATwoTowerFolderAreOneLine(string option, string value, string says)
    {
        var (code, stdout, stderr) = CliRunner.Run("serve", "-c", Path.Combine(ZeroShotRefsFactAttribute.Dir, "clip_tiny"),
            "--urls", ServeTests.FreePort().ToString(), option, value);
        Assert.Equal(1, code);
        Assert.Equal("", stdout);
        var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("error: " + says, line);
    }

    [Fact]
    public void ClipBpeOnAClassifierIsOneLine()
    {
        var (code, _, stderr) = CliRunner.Run("serve", "--urls", ServeTests.FreePort().ToString(), "--clip-bpe", "x.txt.gz");
        Assert.Equal(1, code);
        Assert.Equal("error: --clip-bpe is for CLIP folders (config.json model_type clip)", stderr.Trim());
    }
}
