// Classify images with a VitSharp model from a console app (docs/CSHARP.md):
//   dotnet run --project samples/csharp/ClassifyConsole -- samples/chelsea.png [more images…] [--model PATH]
using System.Numerics.Tensors;
using VitSharp;
using VitSharp.Inference;
using VitSharp.Models;

var images = new List<string>();
string model = Path.Combine(AppContext.BaseDirectory, "models", "cifar10_vit.bf16.safetensors");
for (int i = 0; i < args.Length; i++)
{
    if (args[i] == "--model" && i + 1 < args.Length) model = args[++i];
    else images.Add(args[i]);
}
if (images.Count == 0)
{
    Console.Error.WriteLine("usage: ClassifyConsole IMAGE... [--model PATH]");
    return 2;
}

try
{
    // Load once (checkpoint, config, preprocessing and class names come from the file), then reuse for every image.
    using var classifier = Classifier.Load(model);
    foreach (var path in images)
    {
        // Encoded bytes in (PNG, JPEG, BMP, PPM…): decoded, resized and normalised as the model expects.
        var top = classifier.Classify(File.ReadAllBytes(path), topK: 3, name: path);
        Console.WriteLine($"{path}: {string.Join(", ", top.Select(p => $"{p.Label ?? p.Index.ToString()} {p.Probability:P1}"))}");
    }

    // The same model on System.Numerics.Tensors: preprocessed input (1, 3, H, W) in, pooled features (1, F) out.
    using var first = File.OpenRead(images[0]);
    Tensor<float> input = classifier.Preprocess(VitSharp.Data.Codecs.ImageCodecs.Decode(first, images[0]));
    Tensor<float> features = classifier.Run(input, OutputKind.Pooled);
    Console.WriteLine($"features of {images[0]}: [{string.Join(", ", features.Lengths.ToArray())}], L2 norm {Tensor.Norm(features.AsReadOnlyTensorSpan()):F3}");
    return 0;
}
catch (VitSharpException e)
{
    // every bad-input error is one line naming the file and what is wrong
    Console.Error.WriteLine($"error: {e.Message}");
    return 1;
}
