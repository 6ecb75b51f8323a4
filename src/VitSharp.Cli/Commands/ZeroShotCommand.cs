using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using VitSharp.Inference;

namespace VitSharp.Cli.Commands;

/// <summary>`vit zeroshot`: images scored against free-text labels by a two-tower model (CLIP, SigLIP, LiT).</summary>
public sealed class ZeroShotCommand : ICliCommand
{
    public Command Create()
    {
        var o = new ZeroShotCliOptions();
        var images = new Argument<string[]>("images") { Description = "image files (PNG, JPEG, BMP, PPM/PGM) or folders", Arity = ArgumentArity.OneOrMore };
        var labels = new Option<string?>("--labels", "-l") { Description = "the labels, comma-separated: \"cat,dog,a red car\"" };
        var labelsFile = new Option<string?>("--labels-file") { Description = "the labels, one a line" };
        var templates = new Option<string>("--templates", "-t")
        {
            Description = "prompt templates, averaged per label as CLIP does: none (the label alone), a dataset of CLIP's prompts.md (e.g. CIFAR10, Food101), or a file of templates with {} one a line",
            DefaultValueFactory = _ => "none",
        };
        var topK = new Option<int>("--top-k", "-k") { Description = "labels to show per image", DefaultValueFactory = _ => 5 };
        var json = new Option<bool>("--json") { Description = "print JSON instead of text" };
        var batch = SharedOptions.BatchSize(16);
        var cmd = new Command("zeroshot", "classify images with free-text labels (a CLIP or SigLIP folder, or a big_vision SigLIP/LiT .npz)");
        o.AddTo(cmd);
        cmd.Arguments.Add(images);
        foreach (var x in new Option[] { labels, labelsFile, templates, topK, json, batch }) cmd.Options.Add(x);
        cmd.SetAction(r => Cli.Guard(() =>
        {
            if (r.GetValue(topK) < 1) throw new VitSharpException($"--top-k must be at least 1, not {r.GetValue(topK)}");
            var names = ZeroShotCliOptions.Labels(r.GetValue(labels), r.GetValue(labelsFile));
            var tpl = PromptTemplates.Get(r.GetValue(templates)!);
            var files = Classifier.ExpandImagePaths(r.GetValue(images)!);
            if (files.Count == 0) throw new VitSharpException("no image files found");
            using var backend = o.Backend(r);
            using var model = o.Load(r, backend);
            var output = new JsonArray();
            int failed = 0;
            foreach (var chunk in ImageFiles.DecodeInBatches(files, r.GetValue(batch)))
            {
                foreach (var bad in chunk.Errors)
                {
                    failed++;
                    Cli.ReportFileError(bad);
                    if (r.GetValue(json)) output.Add((JsonNode)new JsonObject { ["image"] = bad.File, ["error"] = bad.Message });
                }
                if (chunk.Images.Count == 0) continue;
                var results = model.Classify(chunk.Images, names, tpl, r.GetValue(topK));
                for (int i = 0; i < chunk.Files.Count; i++)
                {
                    if (r.GetValue(json))
                        output.Add((JsonNode)Cli.TopJson(chunk.Files[i], results[i].Select(p => (p.Index, (string?)p.Label, p.Probability, p.Logit))));
                    else
                    {
                        Console.WriteLine(chunk.Files[i]);
                        foreach (var p in results[i]) Console.WriteLine($"  {p.Probability,8:P2}  {p.Logit,9:F4}  {p.Label}");
                    }
                }
            }
            if (r.GetValue(json)) Console.WriteLine(output.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            return Cli.BatchExitCode(failed, files.Count);
        }));
        return cmd;
    }
}

/// <summary>`vit embed`: text and image embeddings of a two-tower model, and their similarities, as JSON.</summary>
public sealed class EmbedCommand : ICliCommand
{
    public Command Create()
    {
        var o = new ZeroShotCliOptions();
        var images = new Argument<string[]>("images") { Description = "image files or folders (optional)", Arity = ArgumentArity.ZeroOrMore };
        var texts = new Option<string[]>("--text") { Description = "a text to embed (repeatable)", AllowMultipleArgumentsPerToken = false };
        var cmd = new Command("embed", "L2-normalised text and image embeddings of a CLIP or SigLIP folder (or big_vision .npz), with image–text cosine similarities and logits, as JSON");
        o.AddTo(cmd);
        cmd.Arguments.Add(images);
        cmd.Options.Add(texts);
        cmd.SetAction(r => Cli.Guard(() =>
        {
            var t = r.GetValue(texts) ?? [];
            var files = Classifier.ExpandImagePaths(r.GetValue(images) ?? []);
            if (t.Length == 0 && files.Count == 0) throw new VitSharpException("nothing to embed: give --text and/or images");
            using var backend = o.Backend(r);
            using var model = o.Load(r, backend);
            var decoded = ImageFiles.Decode(files);
            foreach (var bad in decoded.Errors) Cli.ReportFileError(bad);
            if (decoded.Errors.Count > 0) throw new VitSharpException($"{decoded.Errors.Count} image(s) could not be read");
            var result = ZeroShotJsonOutput.Embeddings(model, t, decoded.Files, decoded.Images);
            Console.WriteLine(result.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            return 0;
        }));
        return cmd;
    }
}

/// <summary>The options both two-tower commands take.</summary>
internal sealed class ZeroShotCliOptions
{
    public Option<string> Checkpoint { get; } = new("--checkpoint", "-c")
    {
        Description = "a Hugging Face CLIPModel or SiglipModel folder (config.json, model.safetensors, tokenizer files), or a big_vision two-tower .npz (SigLIP, LiT)",
        Required = true,
    };
    public Option<string?> ClipBpe { get; } = new("--clip-bpe") { Description = "CLIP's tokenizer from OpenAI's bpe_simple_vocab_16e6.txt.gz instead of the folder's vocab.json/merges.txt" };
    public Option<string?> SentencePiece { get; } = new("--spiece") { Description = "a big_vision .npz's SentencePiece model (default: NAME.model or spiece.model beside it)" };
    public Option<string> Device { get; } = SharedOptions.Device();
    public Option<bool> AllowNonFinite { get; } = new("--allow-non-finite") { Description = "load weights holding NaN or Inf (refused by default)" };

    public void AddTo(Command c)
    {
        foreach (var o in new Option[] { Checkpoint, ClipBpe, SentencePiece, Device, AllowNonFinite }) c.Options.Add(o);
    }

    public VitSharp.Backends.IBackend Backend(ParseResult r) => Backends.Create(Tensors.Device.Parse(Backends.ResolveDevice(r.GetValue(Device))));

    public ZeroShotModel Load(ParseResult r, VitSharp.Backends.IBackend backend) => ZeroShotModel.Load(r.GetValue(Checkpoint)!,
        new ZeroShotOptions { ClipBpe = r.GetValue(ClipBpe), SentencePiece = r.GetValue(SentencePiece), Load = new Checkpoints.LoadOptions { AllowNonFinite = r.GetValue(AllowNonFinite) } }, backend);

    public static string[] Labels(string? inline, string? file)
    {
        if (inline is not null && file is not null) throw new VitSharpException("give --labels or --labels-file, not both");
        string[] labels = inline is not null ? inline.Split(',').Select(s => s.Trim()).Where(s => s.Length > 0).ToArray()
            : file is not null ? (File.Exists(file) ? File.ReadAllLines(file).Select(s => s.Trim()).Where(s => s.Length > 0).ToArray()
                : throw new VitSharpException($"{file}: no such file"))
            : throw new VitSharpException("--labels or --labels-file is required");
        if (labels.Length == 0) throw new VitSharpException(file is not null ? $"{file}: no labels" : "--labels names no label");
        return labels;
    }
}
