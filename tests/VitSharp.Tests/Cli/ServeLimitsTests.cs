using System.Buffers.Binary;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using VitSharp.Cli;
using VitSharp.Cli.Commands;
using VitSharp.Cli.Serving;
using VitSharp.Checkpoints;
using VitSharp.Data.Codecs;
using VitSharp.Inference;

namespace VitSharp.Tests.Cli;

/// <summary>serve under bad requests: typed 4xx JSON answers, body/pixel/concurrency limits, sniffed bodies, a log line each.</summary>
public class ServeLimitsTests
{
    private static readonly string ImagePath = ServeTests.ImagePath;

    private static int FreePort() => ServeTests.FreePort();

    private static async Task<(HttpStatusCode, string)> Answer(Task<HttpResponseMessage> request)
    {
        using var r = await request;
        var body = await r.Content.ReadAsStringAsync();
        Assert.Equal("application/json", r.Content.Headers.ContentType?.MediaType);
        return (r.StatusCode, (string?)JsonNode.Parse(body)!["error"] ?? body);
    }

    private static ByteArrayContent Raw(byte[] bytes, string? type)
    {
        var c = new ByteArrayContent(bytes);
        if (type is not null) c.Headers.ContentType = MediaTypeHeaderValue.Parse(type);
        return c;
    }

    /// <summary>
    /// POST over a bare socket, sending the body pieces only while the server reads them, then the status and the JSON
    /// error of its answer (HttpClient fails with a broken pipe when the server answers before the body is sent).
    /// </summary>
    private static (int, string) RawPost(string url, string path, string header, IEnumerable<byte[]> pieces)
    {
        var head = Encoding.ASCII.GetBytes($"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n{header}\r\n\r\n");
        var (status, response, _) = Exchange(new Uri(url).Port, pieces.Prepend(head));
        Assert.Contains("Content-Type: application/json", response);
        var body = response[(response.IndexOf("\r\n\r\n", StringComparison.Ordinal) + 4)..];
        return (status, (string)JsonNode.Parse(body[body.IndexOf('{')..(body.LastIndexOf('}') + 1)])!["error"]!);
    }

    /// <summary>
    /// Raw bytes over a bare socket: sends the pieces (a write the server refuses, having answered, ends the sending);
    /// when <paramref name="endIfSilentFor"/> is given and the server has said nothing by then, ends the sending side
    /// (Kestrel takes that end for the client gone, so only a request the server still waits on is ended); then reads
    /// one whole answer (by its Content-Length or chunked end) or until the server closes. Returns the status (0:
    /// closed without an answer), the answer, and the time from connecting to the end of the answer. A server that
    /// neither answers nor closes within <paramref name="timeout"/> ms fails the test: that is a hang.
    /// </summary>
    /// <summary>Runs body(0..count-1) on <paramref name="threads"/> dedicated threads, then rethrows the first failure.
    /// Not the thread pool: blocking socket reads there starve the in-process server's own timeout and heartbeat work on
    /// a 2-core machine (seen: a stalled client answered after 11.7 s instead of ~3 s under Parallel.ForEach).</summary>
    private static void OnThreads(int count, int threads, Action<int> body)
    {
        int next = -1;
        var failures = new System.Collections.Concurrent.ConcurrentQueue<Exception>();
        var workers = Enumerable.Range(0, threads).Select(_ => new Thread(() =>
        {
            for (int i; (i = Interlocked.Increment(ref next)) < count;)
            {
                try { body(i); }
                catch (Exception e) { failures.Enqueue(e); }
            }
        }) { IsBackground = true }).ToList();
        workers.ForEach(t => t.Start());
        workers.ForEach(t => t.Join());
        if (failures.TryDequeue(out var first)) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(first);
    }

    private static (int Status, string Response, TimeSpan Elapsed) Exchange(int port, IEnumerable<byte[]> pieces,
        TimeSpan? endIfSilentFor = null, int timeout = 15_000)
    {
        using var client = new TcpClient();
        var sw = System.Diagnostics.Stopwatch.StartNew();
        client.Connect(IPAddress.Loopback, port);
        client.ReceiveTimeout = client.SendTimeout = timeout;
        var stream = client.GetStream();
        try
        {
            foreach (var p in pieces) stream.Write(p);
            if (endIfSilentFor is { } wait && !client.Client.Poll(wait, SelectMode.SelectRead)) client.Client.Shutdown(SocketShutdown.Send);
        }
        catch (IOException) { }
        catch (SocketException) { }
        var answer = new MemoryStream();
        var buffer = new byte[8192];
        try
        {
            for (int n; (n = stream.Read(buffer)) > 0;)
            {
                answer.Write(buffer, 0, n);
                if (Complete(Encoding.Latin1.GetString(answer.ToArray()))) break;
            }
        }
        catch (IOException e) when (e.InnerException is SocketException { SocketErrorCode: SocketError.TimedOut })
        {
            Assert.Fail($"no answer and no close within {timeout} ms: the server hangs ({Encoding.Latin1.GetString(answer.ToArray())})");
        }
        catch (IOException) { } // reset by the server: closed
        var response = Final(Encoding.Latin1.GetString(answer.ToArray()));
        int status = response.StartsWith("HTTP/1.1 ", StringComparison.Ordinal) ? int.Parse(response.AsSpan(9, 3)) : 0;
        return (status, response, sw.Elapsed);
    }

    // The answer after any interim 1xx responses (100 Continue).
    private static string Final(string r)
    {
        while (System.Text.RegularExpressions.Regex.IsMatch(r, @"^HTTP/1\.1 1\d\d ") && r.IndexOf("\r\n\r\n", StringComparison.Ordinal) is >= 0 and var e)
            r = r[(e + 4)..];
        return r;
    }

    // A final response whose headers and body (by Content-Length, or chunked to its last chunk) have all arrived.
    private static bool Complete(string r)
    {
        r = Final(r);
        if (r.StartsWith("HTTP/1.1 1", StringComparison.Ordinal)) return false;
        int end = r.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        if (end < 0) return false;
        var headers = r[..end];
        var length = System.Text.RegularExpressions.Regex.Match(headers, @"(?im)^content-length:\s*(\d+)");
        if (length.Success) return r.Length - end - 4 >= int.Parse(length.Groups[1].Value);
        if (System.Text.RegularExpressions.Regex.IsMatch(headers, @"(?im)^transfer-encoding:\s*chunked")) return r.EndsWith("0\r\n\r\n", StringComparison.Ordinal);
        return false; // read to the close
    }

    /// <summary>A PNG whose header claims width × height (the CRC fixed up); its pixels are the small test image's.</summary>
    private static byte[] PngClaiming(int width, int height)
    {
        var png = File.ReadAllBytes(ImagePath);
        BinaryPrimitives.WriteInt32BigEndian(png.AsSpan(16), width);
        BinaryPrimitives.WriteInt32BigEndian(png.AsSpan(20), height);
        BinaryPrimitives.WriteUInt32BigEndian(png.AsSpan(29), Crc32.Compute(png.AsSpan(12, 17)));
        return png;
    }

    [Fact]
    public async Task BadRequestsGetTypedJsonErrors()
    {
        using var classifier = Classifier.Load(TestData.Small("vit_tiny48", "model.safetensors"), new LoadOptions { Heads = 2 });
        await using var batching = new BatchingClassifier(classifier, maxBatch: 4);
        var url = $"http://127.0.0.1:{FreePort()}";
        var log = new StringWriter();
        await using var app = ClassifierServer.Build(batching, url,
            new ServeOptions { MaxBodyBytes = 8L << 20, Log = TextWriter.Synchronized(log) });
        await app.StartAsync();
        using var http = new HttpClient { BaseAddress = new Uri(url) };
        var png = await File.ReadAllBytesAsync(ImagePath);

        // curl --data-binary sends application/x-www-form-urlencoded: the bytes are sniffed, the image classified.
        using (var ok = await http.PostAsync("/v1/classify?top_k=2", Raw(png, "application/x-www-form-urlencoded")))
        {
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
            Assert.Equal(2, JsonNode.Parse(await ok.Content.ReadAsStringAsync())!["top"]!.AsArray().Count);
        }
        using (var ok = await http.PostAsync("/v1/embed", Raw(png, "text/plain")))
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);

        // JSON {"image": base64}, also as a data: URL; a JSON body of another shape is a 400 naming the shape.
        using (var ok = await http.PostAsync("/v1/classify?top_k=1", Raw(Encoding.ASCII.GetBytes($"{{\"image\": \"{Convert.ToBase64String(png)}\"}}"), "application/json")))
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        using (var ok = await http.PostAsync("/v1/embed", Raw(Encoding.ASCII.GetBytes($" {{\"image\": \"data:image/png;base64,{Convert.ToBase64String(png)}\"}}"), "application/json")))
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        var (sj, ej) = await Answer(http.PostAsync("/v1/classify", Raw("{\"img\": 1}"u8.ToArray(), "application/json")));
        Assert.Equal(HttpStatusCode.BadRequest, sj);
        Assert.Equal("a JSON body must be {\"image\": \"BASE64\"}: no string field \"image\"", ej);
        var (sb, eb) = await Answer(http.PostAsync("/v1/classify", Raw("{\"image\": \"@@@\"}"u8.ToArray(), "application/json")));
        Assert.Equal(HttpStatusCode.BadRequest, sb);
        Assert.Equal("a JSON body must be {\"image\": \"BASE64\"}: field \"image\" is not base64", eb);
        var (sm, em) = await Answer(http.PostAsync("/v1/classify", Raw("{\"image\": "u8.ToArray(), "application/json")));
        Assert.Equal(HttpStatusCode.BadRequest, sm);
        Assert.StartsWith("a JSON body must be {\"image\": \"BASE64\"}: ", em);

        foreach (var k in new[] { "abc", "-1", "0", "" })
        {
            var (status, error) = await Answer(http.PostAsync($"/v1/classify?top_k={k}", Raw(png, "image/png")));
            Assert.Equal(HttpStatusCode.BadRequest, status);
            Assert.Equal($"top_k must be a positive integer, got '{k}'", error);
        }

        var (s1, e1) = await Answer(http.PostAsync("/v1/classify", Raw(png, "multipart/form-data")));
        Assert.Equal(HttpStatusCode.BadRequest, s1);
        Assert.Equal("multipart/form-data without a boundary", e1);

        var multipart = Encoding.ASCII.GetBytes("--XyZ\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n")
            .Concat(png).Concat("\r\n--XyZ--\r\n"u8.ToArray()).ToArray();
        using (var ok = await http.PostAsync("/v1/classify", Raw(multipart, "multipart/form-data; boundary=XyZ")))
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        var (s2, e2) = await Answer(http.PostAsync("/v1/classify", Raw(multipart[..(multipart.Length / 2)], "multipart/form-data; boundary=XyZ")));
        Assert.Equal(HttpStatusCode.BadRequest, s2);
        Assert.StartsWith("malformed multipart body: ", e2);

        var fields = new StringBuilder();
        for (int i = 0; i < 1100; i++) fields.Append($"--XyZ\r\nContent-Disposition: form-data; name=\"f{i}\"\r\n\r\nv\r\n");
        fields.Append("--XyZ--\r\n");
        var (s3, e3) = await Answer(http.PostAsync("/v1/classify", Raw(Encoding.ASCII.GetBytes(fields.ToString()), "multipart/form-data; boundary=XyZ")));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, s3);
        Assert.Contains("1024 fields", e3);

        var (s4, e4) = await Answer(http.PostAsync("/v1/classify", Raw(png, "multipart/mixed; boundary=XyZ")));
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, s4);
        Assert.Contains("multipart/mixed", e4);

        var urlencoded = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("a=b&", (5 << 20) / 4)));
        var (s5, e5) = await Answer(http.PostAsync("/v1/classify", Raw(urlencoded, "application/x-www-form-urlencoded")));
        Assert.Equal(HttpStatusCode.BadRequest, s5);
        Assert.Equal("request body: unknown image format (no registered decoder recognises its first bytes)", e5);

        var garbage = new byte[4096];
        new Random(7).NextBytes(garbage);
        var (s6, e6) = await Answer(http.PostAsync("/v1/classify", Raw(garbage, "application/octet-stream")));
        Assert.Equal(HttpStatusCode.BadRequest, s6);
        Assert.Contains("unknown image format", e6);

        // Over the body limit: refused from Content-Length, and when chunked (no length) while reading.
        var (s7, e7) = RawPost(url, "/v1/classify", $"Content-Length: {9 << 20}", [png]);
        Assert.Equal(413, s7);
        Assert.Equal($"request body over the limit of {8 << 20} bytes (serve --max-body)", e7);
        var chunk = new byte[1 << 20];
        var chunks = Enumerable.Range(0, 10).Select(_ => Encoding.ASCII.GetBytes($"{chunk.Length:x}\r\n").Concat(chunk).Concat("\r\n"u8.ToArray()).ToArray());
        var (s8, e8) = RawPost(url, "/v1/classify", "Transfer-Encoding: chunked", chunks);
        Assert.Equal(413, s8);
        Assert.Equal(e7, e8);

        // A 16000² PNG (a few KB on the wire) is refused from its header, before any pixel buffer.
        var (s9, e9) = await Answer(http.PostAsync("/v1/classify", Raw(PngClaiming(16000, 16000), "image/png")));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, s9);
        Assert.Contains("image size 16000x16000 exceeds the limit of 40000000 pixels", e9);

        // An OpenAPI document lists the endpoints and the limits in force.
        var openapi = JsonNode.Parse(await http.GetStringAsync("/openapi.json"))!;
        Assert.Equal("3.0.3", (string?)openapi["openapi"]);
        Assert.Equal(["/v1/classify", "/v1/embed", "/v1/zeroshot", "/v1/embed-text", "/v1/model", "/healthz", "/readyz", "/metrics"], openapi["paths"]!.AsObject().Select(p => p.Key));
        Assert.Equal(1, (int)openapi["paths"]!["/v1/classify"]!["post"]!["parameters"]![0]!["schema"]!["minimum"]!);
        Assert.Contains($"at most {8 << 20} bytes and 40000000 pixels", (string?)openapi["paths"]!["/v1/embed"]!["post"]!["requestBody"]!["description"]);
        Assert.NotNull(openapi["paths"]!["/v1/classify"]!["post"]!["responses"]!["413"]);

        // /v1/model names the checkpoint's file, not where it lies.
        var model = JsonNode.Parse(await http.GetStringAsync("/v1/model"))!;
        Assert.Equal("model.safetensors", (string?)model["checkpoint"]);
        Assert.DoesNotContain(Path.GetDirectoryName(classifier.Checkpoint.Path)!, model.ToJsonString());
        await app.StopAsync();

        // One line per request: method, path, status, milliseconds, batch size.
        var lines = log.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(23, lines.Length);
        Assert.Matches(@"^POST /v1/classify 200 \d+\.\dms batch=1$", lines[0]);
        Assert.Matches(@"^POST /v1/embed 200 \d+\.\dms batch=1$", lines[1]);
        Assert.Matches(@"^POST /v1/classify 400 \d+\.\dms batch=-$", lines[4]);
        Assert.Matches(@"^GET /v1/model 200 \d+\.\dms batch=-$", lines[^1]);
        Assert.Equal(4, lines.Count(l => l.StartsWith("POST /v1/classify 413 ")));
    }

    [Fact]
    public async Task MutatedRequestsNeverGet500()
    {
        using var classifier = Classifier.Load(TestData.Small("vit_tiny48", "model.safetensors"), new LoadOptions { Heads = 2 });
        await using var batching = new BatchingClassifier(classifier, maxBatch: 4);
        var url = $"http://127.0.0.1:{FreePort()}";
        await using var app = ClassifierServer.Build(batching, url, new ServeOptions { Log = null });
        await app.StartAsync();
        using var http = new HttpClient { BaseAddress = new Uri(url) };
        var png = await File.ReadAllBytesAsync(ImagePath);
        var multipart = Encoding.ASCII.GetBytes("--B\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n\r\n")
            .Concat(png).Concat("\r\n--B--\r\n"u8.ToArray()).ToArray();
        var json = Encoding.ASCII.GetBytes($"{{\"image\": \"{Convert.ToBase64String(png)}\"}}");
        string[] types = ["image/png", "application/x-www-form-urlencoded", "multipart/form-data; boundary=B", "application/json", "text/plain"];
        var rng = new Random(11);
        var statuses = new Dictionary<int, int>();
        for (int i = 0; i < 150; i++)
        {
            int kind = rng.Next(3);
            var body = (kind == 0 ? png : kind == 1 ? multipart : json).ToArray();
            switch (rng.Next(3))
            {
                case 0: for (int j = 0; j < 1 + rng.Next(8); j++) body[rng.Next(body.Length)] = (byte)rng.Next(256); break;
                case 1: body = body[..rng.Next(body.Length)]; break;
                default: body = body.Concat(Enumerable.Range(0, rng.Next(64)).Select(_ => (byte)rng.Next(256))).ToArray(); break;
            }
            var type = rng.Next(4) == 0 ? types[rng.Next(types.Length)] : types[kind == 0 ? 0 : kind == 1 ? 2 : 3];
            using var r = await http.PostAsync(rng.Next(2) == 0 ? "/v1/classify" : "/v1/embed", Raw(body, type));
            int status = (int)r.StatusCode;
            statuses[status] = statuses.GetValueOrDefault(status) + 1;
            Assert.True(status is 200 or 400 or 413 or 415, $"case {i}: {status} {type} {await r.Content.ReadAsStringAsync()}");
            var answer = JsonNode.Parse(await r.Content.ReadAsStringAsync())!;
            if (status != 200) Assert.False(string.IsNullOrWhiteSpace((string?)answer["error"]), $"case {i}: no error message");
        }
        Assert.True(statuses.GetValueOrDefault(400) > 20, string.Join(", ", statuses));
        Assert.Equal("ok", await http.GetStringAsync("/healthz"));
        await app.StopAsync();
    }

    [Fact]
    public async Task MalformedRawHttpNeverGets500OrHangs()
    {
        using var classifier = Classifier.Load(TestData.Small("vit_tiny48", "model.safetensors"), new LoadOptions { Heads = 2 });
        await using var batching = new BatchingClassifier(classifier, maxBatch: 4);
        int port = FreePort();
        var url = $"http://127.0.0.1:{port}";
        var timeouts = TimeSpan.FromSeconds(2);
        await using var app = ClassifierServer.Build(batching, url,
            new ServeOptions { Log = null, MaxBodyBytes = 1 << 20, RequestHeadersTimeout = timeouts, BodyGracePeriod = timeouts });
        await app.StartAsync();
        var png = await File.ReadAllBytesAsync(ImagePath);
        static byte[] A(string s) => Encoding.Latin1.GetBytes(s);
        string Post(string headers) => $"POST /v1/classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n{headers}\r\n";
        var good = A(Post($"Content-Length: {png.Length}\r\n")).Concat(png).ToArray();
        Assert.Equal(200, Exchange(port, [good]).Status);

        // Each: sent (and ended there if the server still waits for more after 300 ms); any answer is a 4xx (0:
        // closed without one; 200 where Kestrel's parser is lenient, as for bare LF line ends), in bounded time.
        var end = TimeSpan.FromMilliseconds(300);
        var cases = new (string Name, byte[] Bytes)[]
        {
            ("truncated request line", A("POST /v1/cla")),
            ("request line without a version", A("POST /v1/classify\r\n\r\n")),
            ("headers that never end", A("POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Le")),
            ("HTTP/9.9", A("GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n")),
            ("unknown method", A("BREW /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")),
            ("NUL in a header", A("GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n")),
            ("bare LF line ends", A("GET /healthz HTTP/1.1\nHost: x\n\n")),
            ("header without a colon", A("GET /healthz HTTP/1.1\r\nHost x\r\n\r\n")),
            ("no Host", A("GET /healthz HTTP/1.1\r\n\r\n")),
            ("Content-Length abc", A(Post("Content-Length: abc\r\n")).Concat(png).ToArray()),
            ("Content-Length -5", A(Post("Content-Length: -5\r\n")).Concat(png).ToArray()),
            ("Content-Length 1, 2", A(Post("Content-Length: 1, 2\r\n")).Concat(png).ToArray()),
            ("Content-Length past 2^64", A(Post("Content-Length: 99999999999999999999999\r\n")).Concat(png).ToArray()),
            ("two Content-Lengths", A(Post($"Content-Length: {png.Length}\r\nContent-Length: 7\r\n")).Concat(png).ToArray()),
            ("Content-Length past the body", A(Post("Content-Length: 5000\r\n")).Concat(png[..100]).ToArray()),
            ("Content-Length short of the body", A(Post("Content-Length: 10\r\n")).Concat(png).ToArray()),
            // Headers only: the 413 is decided from the declared length, and body bytes the server leaves unread make its
            // close a reset that can overtake the answer on a loaded machine (seen: 0 instead of 413).
            ("Content-Length over --max-body", A(Post($"Content-Length: {2 << 20}\r\n"))),
            ("a 100 KB header", A(Post($"X-Big: {new string('a', 100_000)}\r\nContent-Length: 0\r\n"))),
            ("2000 headers", A(Post(string.Concat(Enumerable.Range(0, 2000).Select(i => $"X-{i}: v\r\n")) + "Content-Length: 0\r\n"))),
            ("a 100 KB URL", A($"GET /{new string('a', 100_000)} HTTP/1.1\r\nHost: x\r\n\r\n")),
            ("chunk size zz", A(Post("Transfer-Encoding: chunked\r\n") + "zz\r\nabc\r\n0\r\n\r\n")),
            ("chunk size past 2^64", A(Post("Transfer-Encoding: chunked\r\n") + "ffffffffffffffffffffff\r\nabc\r\n0\r\n\r\n")),
            ("chunk without its CRLF", A(Post("Transfer-Encoding: chunked\r\n") + "5\r\nabcdeXX0\r\n\r\n")),
            ("chunked, cut", A(Post("Transfer-Encoding: chunked\r\n") + $"{png.Length:x}\r\n").Concat(png[..50]).ToArray()),
            ("chunked and a Content-Length", A(Post($"Transfer-Encoding: chunked\r\nContent-Length: {png.Length}\r\n")).Concat(png).ToArray()),
            ("Transfer-Encoding gzip", A(Post("Transfer-Encoding: gzip\r\n")).Concat(png).ToArray()),
            ("multipart, empty boundary", A(Post("Content-Length: 14\r\n").Replace("image/png", "multipart/form-data; boundary=\"\"") + "--\r\n--\r\n--\r\n--")),
            ("random bytes", Enumerable.Range(0, 512).Select(i => (byte)(i * 7919 % 251)).ToArray()),
        };
        var seen = new List<string>();
        foreach (var (name, bytes) in cases)
        {
            var (status, response, elapsed) = Exchange(port, [bytes], end);
            seen.Add($"{name}: {status}");
            // 505 HTTP Version Not Supported is Kestrel's (correct) answer to a version it does not speak.
            Assert.True(status is 0 or 200 or (>= 400 and < 500) || (status == 505 && name == "HTTP/9.9"), $"{name}: {status} {response}");
            Assert.True(elapsed < TimeSpan.FromSeconds(10), $"{name}: {elapsed}");
        }
        var all = string.Join("; ", seen);
        // Kestrel's own answers (no JSON) and the service's (JSON naming what is wrong) both appear.
        // A request cut short by the client's end gets a 400 or no answer (the client is gone: 0), as the race goes.
        foreach (var cut in new[] { "truncated request line", "headers that never end", "Content-Length past the body", "chunked, cut" })
            Assert.True(seen.Contains($"{cut}: 0") || seen.Contains($"{cut}: 400"), all);
        foreach (var expected in new[] { "Content-Length abc: 400", "two Content-Lengths: 400",
                     "Content-Length over --max-body: 413", "a 100 KB header: 431",
                     "2000 headers: 431", "a 100 KB URL: 414", "chunk size zz: 400",
                     "HTTP/9.9: 505", "multipart, empty boundary: 400", "random bytes: 400" })
            Assert.True(seen.Contains(expected), $"{expected} not in {all}");
        Assert.InRange(seen.Count(x => x.EndsWith(": 0", StringComparison.Ordinal)), 0, 4);

        // Slowloris: headers, or a body (sized, after 100 Continue, or chunked), started and then stalled, the
        // connection kept open. The server gives up after its timeouts (2 s here, plus its one-second heartbeat),
        // answering 408 or closing.
        var slow = new (string Name, byte[] Bytes)[]
        {
            ("stalled headers", A("POST /v1/classify HTTP/1.1\r\nHost: x\r\nX-Slow: ")),
            ("stalled body", A(Post("Content-Length: 100000\r\n")).Concat(png[..100]).ToArray()),
            ("Expect 100-continue, no body", A(Post("Expect: 100-continue\r\nContent-Length: 100\r\n"))),
            ("stalled chunked body", A(Post("Transfer-Encoding: chunked\r\n") + "400\r\n").Concat(png[..100]).ToArray()),
        };
        // One dedicated thread per stalled client (OnThreads says why not the thread pool).
        OnThreads(slow.Length, slow.Length, i =>
        {
            var (status, response, elapsed) = Exchange(port, [slow[i].Bytes]);
            Assert.True(status is 0 or 408, $"{slow[i].Name}: {status} {response}");
            Assert.True(elapsed > TimeSpan.FromSeconds(1.5) && elapsed < TimeSpan.FromSeconds(10), $"{slow[i].Name}: {elapsed}");
        });

        // Mutated copies of the good request: bytes changed, inserted or cut in the request line and headers; 4 at once.
        var rng = new Random(23);
        int headEnd = good.Length - png.Length;
        var mutated = Enumerable.Range(0, 120).Select(_ =>
        {
            var m = new List<byte>(good);
            for (int j = 0, k = 1 + rng.Next(4); j < k; j++)
            {
                int at = rng.Next(Math.Min(headEnd, m.Count));
                switch (rng.Next(4))
                {
                    case 0: m[at] = (byte)rng.Next(256); break;
                    case 1: m.Insert(at, (byte)"\r\n: \t0-,;\"\0"[rng.Next(11)]); break;
                    case 2: m.RemoveRange(at, Math.Min(1 + rng.Next(8), m.Count - at)); break;
                    default: m.RemoveRange(at + (m.Count - at) / 2, (m.Count - at) / 2); break;
                }
            }
            return m.ToArray();
        }).ToList();
        var statuses = new System.Collections.Concurrent.ConcurrentDictionary<int, int>();
        var sw = System.Diagnostics.Stopwatch.StartNew();
        OnThreads(mutated.Count, 4, i =>
        {
            var (status, response, elapsed) = Exchange(port, [mutated[i]], end);
            statuses.AddOrUpdate(status, 1, (_, n) => n + 1);
            Assert.True(status is 0 or 200 or (>= 400 and < 500) or 505, $"case {i}: {status} {response}");
            Assert.True(elapsed < TimeSpan.FromSeconds(10), $"case {i}: {elapsed}");
        });
        var summary = string.Join(", ", statuses.OrderBy(x => x.Key).Select(x => $"{x.Key}: {x.Value}"));
        Assert.True(statuses.GetValueOrDefault(400) > 25, summary);
        Assert.True(statuses.GetValueOrDefault(200) > 3, summary);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(30), $"{sw.Elapsed}: {summary}");

        // Still serving.
        using var http = new HttpClient { BaseAddress = new Uri(url) };
        using (var ok = await http.PostAsync("/v1/classify?top_k=1", new ByteArrayContent(png)))
        {
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
            Assert.Single(JsonNode.Parse(await ok.Content.ReadAsStringAsync())!["top"]!.AsArray());
        }
        await app.StopAsync();
    }

    [Fact]
    public async Task ConcurrentRequestsAreBoundedByTheGate()
    {
        using var classifier = Classifier.Load(TestData.Small("vit_tiny48", "model.safetensors"), new LoadOptions { Heads = 2 });
        await using var batching = new BatchingClassifier(classifier, maxBatch: 8, maxDelay: TimeSpan.FromMilliseconds(50));
        var url = $"http://127.0.0.1:{FreePort()}";
        var log = new StringWriter();
        await using var app = ClassifierServer.Build(batching, url, new ServeOptions { MaxConcurrent = 1, MaxQueued = 2, Log = TextWriter.Synchronized(log) });
        await app.StartAsync();
        using var http = new HttpClient { BaseAddress = new Uri(url) };
        var png = await File.ReadAllBytesAsync(ImagePath);
        var responses = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => http.PostAsync("/v1/classify", new ByteArrayContent(png))));
        Assert.All(responses, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        await app.StopAsync();
        // One decode slot and two queued inputs: every request is answered, and no forward pass held more than the two
        // preprocessed inputs the queue bound lets wait (the decode gate is released before the forward pass).
        var lines = log.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(4, lines.Length);
        Assert.All(lines, l => Assert.Matches(" batch=[12]$", l));
    }

    [Theory]
    [InlineData("18082", "http://127.0.0.1:18082")]
    [InlineData("http://127.0.0.1:9000", "http://127.0.0.1:9000")]
    [InlineData("http://*:9000; 9001", "http://*:9000;http://127.0.0.1:9001")]
    public void BarePortsAreLoopbackUrls(string given, string expected) => Assert.Equal(expected, ServeCommand.NormalizeUrls(given));

    [Fact]
    public void HostAndPortMakeAUrl()
    {
        Assert.Equal("http://0.0.0.0:9000", ServeCommand.HostPort("0.0.0.0", 9000));
        Assert.Equal("http://[::1]:9000", ServeCommand.HostPort("::1", 9000));
        Assert.Equal("--port 0: a port is 1..65535", Assert.Throws<VitSharpException>(() => ServeCommand.HostPort("127.0.0.1", 0)).Message);
    }

    [Theory]
    [InlineData("localhost:80", "--urls 'localhost:80' is not http://HOST:PORT (or a bare port, taken as http://127.0.0.1:PORT)")]
    [InlineData("70000", "--urls 70000: a port is 1..65535")]
    [InlineData("ftp://x:1", "--urls 'ftp://x:1' is not http://HOST:PORT (or a bare port, taken as http://127.0.0.1:PORT)")]
    public void BadUrlsAreOneLine(string given, string message) =>
        Assert.Equal(message, Assert.Throws<VitSharpException>(() => ServeCommand.NormalizeUrls(given)).Message);
}

[Collection("cli")]
public class ServeCliTests
{
    [Fact]
    public void BusyPortIsOneLine()
    {
        using var busy = new TcpListener(IPAddress.Loopback, 0);
        busy.Start();
        int port = ((IPEndPoint)busy.LocalEndpoint).Port;
        var (code, stdout, stderr) = CliRunner.Run("serve", "--checkpoint", TestData.Small("vit_tiny48", "model.safetensors"),
            "--heads", "2", "--urls", port.ToString());
        Assert.Equal(1, code);
        Assert.Equal("", stdout);
        var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith($"error: cannot listen on http://127.0.0.1:{port}: ", line);
        Assert.Contains("address already in use", line, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("(Address already in use)", line);
    }

    [Fact]
    public void ACheckpointThatFailsToLoadIsOneLine()
    {
        // serve listens before it loads (so /healthz answers while a large model loads); a load failure still ends it
        // with one line and exit code 1, and the port is free again.
        int port = ServeTests.FreePort();
        var missing = Path.Combine(Path.GetTempPath(), $"vitsharp-missing-{Guid.NewGuid():N}.safetensors");
        var (code, stdout, stderr) = CliRunner.Run("serve", "--checkpoint", missing, "--urls", port.ToString());
        Assert.Equal(1, code);
        Assert.Equal("", stdout);
        var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("error: ", line);
        Assert.Contains(Path.GetFileName(missing), line);
        using var again = new TcpListener(IPAddress.Loopback, port);
        again.Start();
    }

    [Fact]
    public void HelpSaysWhatABarePortMeans()
    {
        var (code, stdout, _) = CliRunner.Run("serve", "--help");
        Assert.Equal(0, code);
        Assert.Contains("a bare port N means http://127.0.0.1:N", stdout);
        Assert.Contains("--max-pixels", stdout);
        Assert.Contains("--max-body", stdout);
        Assert.Contains("--max-queued", stdout);
        Assert.Contains("/readyz", stdout);
        Assert.Contains("/metrics", stdout);
        Assert.Contains("--port", stdout);
        Assert.Contains("--host", stdout);
    }
}
