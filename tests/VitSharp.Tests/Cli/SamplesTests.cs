using System.Net;
using System.Text.Json;

namespace VitSharp.Tests.Cli;

/// <summary>
/// docs/CSHARP.md's two programs (samples/csharp/), built with the tests through ProjectReferences that neither reference
/// nor copy them: the console app classifies the cat, and the ASP.NET Core app answers POST /classify on a loopback port.
/// Collection cli: their child processes do not compete with the timing-sensitive tests of other collections.
/// </summary>
[Collection("cli")]
public class SamplesTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(60);
    private static string Sample(string name) => Repo.At("samples", "csharp", name, "bin", Repo.Configuration, "net10.0", name + ".dll");
    private static string Photo(string name) => Path.Combine(AppContext.BaseDirectory, "samples", name);

    [RepoFact]
    public void ConsoleSampleClassifiesTheCat()
    {
        var dll = Sample("ClassifyConsole");
        Assert.True(File.Exists(dll), $"{dll} missing: the test build builds samples/csharp/ClassifyConsole");
        var (cat, coffee) = (Photo("chelsea.png"), Photo("coffee.png"));
        var (code, stdout, stderr) = Repo.Run(Repo.Dotnet, [dll, cat, coffee], Limit);
        Assert.True(code == 0, $"exit {code}: {stderr}");
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.Equal(3, lines.Length);
        Assert.StartsWith($"{cat}: cat 56.7 %, dog 24.0 %", lines[0]); // the shipped model, as `vit classify` prints it
        Assert.StartsWith($"{coffee}: ", lines[1]);
        Assert.StartsWith($"features of {cat}: [1, 256], L2 norm ", lines[2]);

        var bad = Repo.At("README.md");
        (code, stdout, stderr) = Repo.Run(Repo.Dotnet, [dll, bad], Limit);
        Assert.Equal(1, code);
        Assert.Equal($"error: {bad}: unknown image format (no registered decoder recognises its first bytes)", stderr.Trim());
    }

    [RepoFact]
    public async Task WebSampleServesClassifyOnLoopback()
    {
        var dll = Sample("ClassifyWeb");
        Assert.True(File.Exists(dll), $"{dll} missing: the test build builds samples/csharp/ClassifyWeb");
        // port 0: Kestrel picks a free loopback port and logs it ("Now listening on: http://127.0.0.1:N")
        using var p = Repo.Start(Repo.Dotnet, [dll, "--urls", "http://127.0.0.1:0"], cwd: Path.GetDirectoryName(dll));
        try
        {
            var errors = p.StandardError.ReadToEndAsync();
            string? url = null;
            var deadline = DateTime.UtcNow + Limit;
            while (url is null && DateTime.UtcNow < deadline)
            {
                var read = p.StandardOutput.ReadLineAsync();
                if (!read.Wait(deadline - DateTime.UtcNow) || read.Result is not { } line) break;
                var at = line.IndexOf("http://127.0.0.1:", StringComparison.Ordinal);
                if (line.Contains("Now listening on") && at >= 0) url = line[at..].Trim();
            }
            Assert.True(url is not null, $"the web sample did not report its address: {(p.HasExited ? await errors : "")}");
            _ = p.StandardOutput.ReadToEndAsync(); // keep draining its log

            using var http = new HttpClient { BaseAddress = new Uri(url!), Timeout = Limit };
            Assert.Equal("ok", await http.GetStringAsync("/healthz"));

            using var ok = await http.PostAsync("/classify?top_k=2", new ByteArrayContent(await File.ReadAllBytesAsync(Photo("chelsea.png"))));
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
            var top = JsonDocument.Parse(await ok.Content.ReadAsStringAsync()).RootElement;
            Assert.Equal(2, top.GetArrayLength());
            Assert.Equal("cat", top[0].GetProperty("label").GetString());
            Assert.Equal(3, top[0].GetProperty("index").GetInt32());
            Assert.InRange(top[0].GetProperty("probability").GetSingle(), 0.566f, 0.567f); // 56.66 %
            Assert.Equal("dog", top[1].GetProperty("label").GetString());

            using var bad = await http.PostAsync("/classify", new ByteArrayContent("not an image"u8.ToArray()));
            Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
            Assert.Equal("request body: unknown image format (no registered decoder recognises its first bytes)",
                JsonDocument.Parse(await bad.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetString());
        }
        finally
        {
            if (!p.HasExited) p.Kill(entireProcessTree: true);
            p.WaitForExit(10_000);
        }
    }
}
