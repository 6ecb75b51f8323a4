using System.CommandLine;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using VitSharp.Cli.Serving;
using VitSharp.Inference;

namespace VitSharp.Cli.Commands;

/// <summary>`vit serve`: an HTTP classification/embedding service with dynamic batching.</summary>
public sealed class ServeCommand : ICliCommand
{
    public Command Create()
    {
        var ck = new CheckpointOptions(defaultModel: true);
        var urls = new Option<string>("--urls")
        {
            Description = "where to listen: http://HOST:PORT (';' between several); a bare port N means http://127.0.0.1:N",
            DefaultValueFactory = _ => "http://127.0.0.1:8080",
        };
        var host = new Option<string?>("--host") { Description = "listen on http://HOST:PORT (with --port; replaces --urls; host default 127.0.0.1)" };
        var port = new Option<int?>("--port") { Description = "listen on http://HOST:PORT (with --host; replaces --urls; port default 8080)" };
        var labels = new Option<string?>("--labels") { Description = "class names: a text file or a JSON array" };
        var recipe = new Option<string?>("--recipe") { Description = "preprocessing: timm, google, hf or a .json" };
        var maxBatch = new Option<int>("--max-batch") { Description = "images per forward pass", DefaultValueFactory = _ => 16 };
        var defaults = new ServeOptions();
        var maxBody = new Option<long>("--max-body") { Description = "largest request body in bytes (larger: 413)", DefaultValueFactory = _ => defaults.MaxBodyBytes };
        var maxPixels = new Option<long>("--max-pixels") { Description = "largest image width x height decoded (larger: 413)", DefaultValueFactory = _ => defaults.MaxPixels };
        var maxConcurrent = new Option<int>("--max-concurrent") { Description = "requests decoding/preprocessing at once (default: the core count)", DefaultValueFactory = _ => defaults.MaxConcurrent };
        var maxQueued = new Option<int>("--max-queued") { Description = "preprocessed images waiting for or in a forward pass (batches gather from these)", DefaultValueFactory = _ => defaults.MaxQueued };
        var maxLabels = new Option<int>("--max-labels") { Description = "two-tower models: most labels in one /v1/zeroshot request", DefaultValueFactory = _ => defaults.MaxLabels };
        var maxPrompts = new Option<int>("--max-prompts") { Description = "two-tower models: most labels x templates one /v1/zeroshot label set embeds", DefaultValueFactory = _ => defaults.MaxPrompts };
        var maxTexts = new Option<int>("--max-texts") { Description = "two-tower models: most texts in one /v1/embed-text request", DefaultValueFactory = _ => defaults.MaxTexts };
        var maxTextChars = new Option<int>("--max-text-chars") { Description = "two-tower models: longest label, template or text in characters", DefaultValueFactory = _ => defaults.MaxTextChars };
        var labelCache = new Option<int>("--label-cache") { Description = "two-tower models: label sets whose text embeddings are kept (least recently used evicted)", DefaultValueFactory = _ => defaults.LabelCacheSets };
        var clipBpe = new Option<string?>("--clip-bpe") { Description = "CLIP folders: the tokenizer from OpenAI's bpe_simple_vocab_16e6.txt.gz instead of the folder's vocab.json/merges.txt" };
        var cmd = new Command("serve", "serve a checkpoint over HTTP: POST /v1/classify, /v1/embed (a CLIP or SigLIP folder: /v1/zeroshot, /v1/embed-text, /v1/embed); GET /v1/model, /healthz, /readyz, /metrics");
        ck.AddTo(cmd);
        ck.AddDType(cmd);
        var spiece = new Option<string?>("--spiece") { Description = "big_vision two-tower .npz: its SentencePiece model (default: NAME.model or spiece.model beside it)" };
        foreach (var o in new Option[] { urls, host, port, labels, recipe, maxBatch, maxBody, maxPixels, maxConcurrent, maxQueued, maxLabels, maxPrompts, maxTexts, maxTextChars, labelCache, clipBpe, spiece }) cmd.Options.Add(o);
        cmd.SetAction(r => Cli.Guard(() =>
        {
            var listen = NormalizeUrls(r.GetValue(host) is null && r.GetValue(port) is null ? r.GetValue(urls)!
                : HostPort(r.GetValue(host) ?? "127.0.0.1", r.GetValue(port) ?? 8080));
            if (r.GetValue(maxBody) <= 0 || r.GetValue(maxPixels) <= 0 || r.GetValue(maxConcurrent) <= 0 || r.GetValue(maxBatch) <= 0 || r.GetValue(maxQueued) <= 0)
                throw new VitSharpException("--max-body, --max-pixels, --max-concurrent, --max-queued and --max-batch must be positive");
            if (r.GetValue(maxLabels) <= 0 || r.GetValue(maxPrompts) <= 0 || r.GetValue(maxTexts) <= 0 || r.GetValue(maxTextChars) <= 0 || r.GetValue(labelCache) <= 0)
                throw new VitSharpException("--max-labels, --max-prompts, --max-texts, --max-text-chars and --label-cache must be positive");
            var path = ck.CheckpointPath(r);
            bool twoTower = ZeroShotModel.IsTwoTower(path);
            if (twoTower && r.GetValue(labels) is not null) throw new VitSharpException("--labels is for classifier checkpoints: a two-tower model takes its labels per /v1/zeroshot request");
            if (twoTower && r.GetValue(recipe) is not null) throw new VitSharpException("--recipe is for classifier checkpoints: a two-tower model's preprocessing is its folder's preprocessor_config.json (a big_vision .npz: Google's)");
            if (twoTower && ck.DType(r) is not null) throw new VitSharpException($"--dtype {r.GetValue(ck.InferenceDType)} is for classifier checkpoints: a two-tower model serves in f32");
            if (!twoTower && r.GetValue(clipBpe) is not null) throw new VitSharpException("--clip-bpe is for CLIP folders (config.json model_type clip)");
            if (!twoTower && r.GetValue(spiece) is not null) throw new VitSharpException("--spiece is for big_vision two-tower .npz checkpoints");
            var backend = ck.Backend(r);
            var options = new ServeOptions
            {
                MaxBodyBytes = r.GetValue(maxBody), MaxPixels = r.GetValue(maxPixels), MaxConcurrent = r.GetValue(maxConcurrent),
                MaxQueued = r.GetValue(maxQueued), MaxLabels = r.GetValue(maxLabels), MaxPrompts = r.GetValue(maxPrompts),
                MaxTexts = r.GetValue(maxTexts), MaxTextChars = r.GetValue(maxTextChars), LabelCacheSets = r.GetValue(labelCache),
            };
            // Listen first (/healthz answers while the model loads, /readyz once it is loaded and warmed).
            var loading = new TaskCompletionSource<BatchingClassifier>(TaskCreationOptions.RunContinuationsAsynchronously);
            var app = ClassifierServer.Build(loading.Task, listen, options);
            try { app.StartAsync().GetAwaiter().GetResult(); }
            catch (IOException e)
            {
                app.DisposeAsync().AsTask().GetAwaiter().GetResult();
                throw new VitSharpException($"cannot listen on {listen}: {FirstLine(e)}");
            }
            Classifier? classifier = null;
            ZeroShotModel? zeroShot = null;
            BatchingClassifier? batching = null;
            try
            {
                try
                {
                    if (twoTower)
                    {
                        zeroShot = ZeroShotModel.Load(path, new ZeroShotOptions { ClipBpe = r.GetValue(clipBpe), SentencePiece = r.GetValue(spiece), Load = ck.Load(r) }, backend);
                        classifier = zeroShot.Image;
                        batching = new BatchingClassifier(zeroShot, r.GetValue(maxBatch));
                    }
                    else
                    {
                        classifier = Classifier.Load(path, ck.Load(r), backend,
                            ClassifyCommand.RecipeOption(r.GetValue(recipe)), r.GetValue(labels) is string l ? Labels.Read(l) : null, ck.DType(r),
                            r.GetValue(ck.Calibration), ck.CalibrationImageCount(r));
                        batching = new BatchingClassifier(classifier, r.GetValue(maxBatch));
                    }
                    loading.SetResult(batching);
                }
                catch (Exception e) { loading.TrySetException(e); throw; }
                app.Services.GetRequiredService<ServeReadiness>().Ready.GetAwaiter().GetResult();
                Console.Error.WriteLine($"serving {Path.GetFileName(classifier.Checkpoint.Path.TrimEnd('/', '\\'))}{(zeroShot is null ? "" : $" ({zeroShot.Family} two-tower)")} on {listen}");
                app.WaitForShutdownAsync().GetAwaiter().GetResult();
            }
            finally
            {
                app.StopAsync().GetAwaiter().GetResult();
                app.DisposeAsync().AsTask().GetAwaiter().GetResult();
                batching?.DisposeAsync().AsTask().Wait();
                if (zeroShot is not null) zeroShot.Dispose();
                else classifier?.Dispose();
            }
            return 0;
        }));
        return cmd;
    }

    private static string FirstLine(Exception e)
    {
        var inner = e.InnerException?.Message is { Length: > 0 } m && !e.Message.Contains(m, StringComparison.OrdinalIgnoreCase) ? $" ({m})" : "";
        return (e.Message + inner).Split('\n')[0].Trim();
    }

    public static string HostPort(string host, int port)
    {
        if (port is < 1 or > 65535) throw new VitSharpException($"--port {port}: a port is 1..65535");
        if (host.Length == 0 || host.Contains('/') || host.Contains(';')) throw new VitSharpException($"--host '{host}' is not a host name or address");
        return $"http://{(host.Contains(':') && !host.StartsWith('[') ? $"[{host}]" : host)}:{port}";
    }

    /// <summary>"18082" → "http://127.0.0.1:18082"; anything not an http(s) URL with a host is a one-line error.</summary>
    public static string NormalizeUrls(string urls)
    {
        var parts = urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (parts.Length == 0) throw new VitSharpException("--urls is empty: give http://HOST:PORT or a port");
        for (int i = 0; i < parts.Length; i++)
        {
            var p = parts[i];
            if (int.TryParse(p, out var port))
            {
                if (port is < 1 or > 65535) throw new VitSharpException($"--urls {p}: a port is 1..65535");
                parts[i] = $"http://127.0.0.1:{port}";
                continue;
            }
            // Kestrel accepts "*" and "+" as hosts; Uri does not, so check a stand-in.
            var probe = p.Replace("://*", "://any").Replace("://+", "://any");
            if (!Uri.TryCreate(probe, UriKind.Absolute, out var u) || (u.Scheme != "http" && u.Scheme != "https") || u.Host.Length == 0)
                throw new VitSharpException($"--urls '{p}' is not http://HOST:PORT (or a bare port, taken as http://127.0.0.1:PORT)");
        }
        return string.Join(';', parts);
    }
}
