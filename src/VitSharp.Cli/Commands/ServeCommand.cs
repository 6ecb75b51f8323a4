using System.CommandLine;
using VitSharp.Cli.Serving;
using VitSharp.Inference;

namespace VitSharp.Cli.Commands;

/// <summary>`vit serve`: an HTTP classification/embedding service with dynamic batching.</summary>
public sealed class ServeCommand : ICliCommand
{
    public Command Create()
    {
        var ck = new CheckpointOptions(defaultModel: true);
        var urls = new Option<string>("--urls") { Description = "where to listen", DefaultValueFactory = _ => "http://127.0.0.1:8080" };
        var labels = new Option<string?>("--labels") { Description = "class names: a text file or a JSON array" };
        var recipe = new Option<string?>("--recipe") { Description = "preprocessing: timm, google, hf or a .json" };
        var maxBatch = new Option<int>("--max-batch") { Description = "images per forward pass", DefaultValueFactory = _ => 16 };
        var cmd = new Command("serve", "serve a checkpoint over HTTP: POST /v1/classify, /v1/embed; GET /v1/model, /healthz");
        ck.AddTo(cmd);
        foreach (var o in new Option[] { urls, labels, recipe, maxBatch }) cmd.Options.Add(o);
        cmd.SetAction(r => Cli.Guard(() =>
        {
            var backend = ck.Backend(r);
            var classifier = Classifier.Load(ck.CheckpointPath(r), ck.Load(r), backend,
                ClassifyCommand.RecipeOption(r.GetValue(recipe)), r.GetValue(labels) is string l ? Labels.Read(l) : null);
            var batching = new BatchingClassifier(classifier, r.GetValue(maxBatch));
            var app = ClassifierServer.Build(batching, r.GetValue(urls)!);
            Console.Error.WriteLine($"serving {classifier.Checkpoint.Path} on {r.GetValue(urls)}");
            app.Run();
            batching.DisposeAsync().AsTask().Wait();
            classifier.Dispose();
            return 0;
        }));
        return cmd;
    }
}
