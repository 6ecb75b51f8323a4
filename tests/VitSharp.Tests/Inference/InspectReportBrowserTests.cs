using Microsoft.Playwright;
using VitSharp.Data.Codecs;
using VitSharp.Tests.Cli;

namespace VitSharp.Tests.Inference;

/// <summary>The inspect report opened in a real headless Chromium (Debian's, driven by Playwright for .NET): it renders,
/// every image decodes, nothing is fetched and nothing is logged as an error.</summary>
[Collection("cli")]
public class InspectReportBrowserTests : IDisposable
{
    private readonly string _tmp = Directory.CreateTempSubdirectory("vitsharp-browser-").FullName;

    public void Dispose() => Directory.Delete(_tmp, recursive: true);

    /// <summary>$VITSHARP_CHROMIUM, else Debian's /usr/bin/chromium; null when neither exists (Playwright cannot download
    /// its own browser on a machine without network).</summary>
    public static string? Chromium
    {
        get
        {
            var env = Environment.GetEnvironmentVariable("VITSHARP_CHROMIUM");
            if (!string.IsNullOrEmpty(env)) return File.Exists(env) ? env : null;
            return new[] { "/usr/bin/chromium", "/usr/bin/chromium-browser" }.FirstOrDefault(File.Exists);
        }
    }

    [ChromiumFact]
    public async Task ReportRendersInChromiumWithEveryImageDecoded()
    {
        // The shipped CIFAR-10 ViT on two of the README's photos: a trained model, so the figures show structure.
        var dir = Path.Combine(_tmp, "report");
        var samples = Path.Combine(AppContext.BaseDirectory, "samples");
        var (code, _, err) = CliRunner.Run("inspect", "-c", Path.Combine(AppContext.BaseDirectory, "models", "cifar10_vit.bf16.safetensors"),
            "-o", dir, "-i", Path.Combine(samples, "chelsea.png"), Path.Combine(samples, "rocket.jpg"));
        Assert.True(code == 0, err);

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Chromium!,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"],
        });
        var page = await browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 1200, Height = 900 } });
        var errors = new List<string>();
        var fetched = new List<string>();
        page.Console += (_, m) => { if (m.Type == "error") lock (errors) errors.Add(m.Text); };
        page.PageError += (_, e) => { lock (errors) errors.Add(e); };
        page.Request += (_, r) => { if (!r.Url.StartsWith("file:", StringComparison.Ordinal) && !r.Url.StartsWith("data:", StringComparison.Ordinal)) lock (fetched) fetched.Add(r.Url); };
        await page.GotoAsync(new Uri(Path.Combine(dir, "report.html")).AbsoluteUri, new PageGotoOptions { WaitUntil = WaitUntilState.Load });

        var images = await page.EvaluateAsync<ImageState[]>(
            "Array.from(document.images).map(i => ({ src: i.src.slice(0, 22), complete: i.complete, naturalWidth: i.naturalWidth, naturalHeight: i.naturalHeight }))");
        Assert.Equal(1 + 2 + 1 + 2 * 3, images.Length); // filters; similarity + bar; attention bar; per photo: seen, rollout, class-token
        Assert.All(images, i =>
        {
            Assert.Equal("data:image/png;base64,", i.Src);
            Assert.True(i.Complete && i.NaturalWidth > 0 && i.NaturalHeight > 0, $"an image did not decode ({i.NaturalWidth}×{i.NaturalHeight})");
        });
        Assert.Equal(7 * 4, await page.Locator("svg circle title").CountAsync()); // a dot per (layer, head): the shipped model's 7 layers of 4 heads
        Assert.Contains("Mean attention distance per head", await page.InnerTextAsync("h2#distance"));
        Assert.Empty(errors);
        Assert.Empty(fetched);

        var shot = Path.Combine(_tmp, "inspect_report.png");
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = shot, FullPage = true });
        var png = ImageCodecs.Decode(shot);
        Assert.Equal(1200, png.Width);
        Assert.True(png.Height > 1500, $"the page is {png.Height} px tall: sections are missing");
        // VITSHARP_DOCS_SCREENSHOT=path keeps the screenshot (docs/inspect_report.png was taken this way).
        if (Environment.GetEnvironmentVariable("VITSHARP_DOCS_SCREENSHOT") is { Length: > 0 } keep) File.Copy(shot, keep, overwrite: true);
    }

    public sealed class ImageState
    {
        public string Src { get; set; } = "";
        public bool Complete { get; set; }
        public int NaturalWidth { get; set; }
        public int NaturalHeight { get; set; }
    }
}

public sealed class ChromiumFactAttribute : FactAttribute
{
    public ChromiumFactAttribute()
    {
        if (InspectReportBrowserTests.Chromium is null)
            Skip = "needs a Chromium: Debian's package chromium (/usr/bin/chromium; .ci/run installs it as root) or $VITSHARP_CHROMIUM";
    }
}
