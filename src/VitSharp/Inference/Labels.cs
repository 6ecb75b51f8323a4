using System.Text.Json;
using System.Text.Json.Nodes;

namespace VitSharp.Inference;

/// <summary>Class names: from a text file (one a line) or a JSON array; ImageNet's 1000 names are built in.</summary>
public static class Labels
{
    private static readonly Lazy<string[]> ImageNetNames = new(() =>
    {
        using var s = typeof(Labels).Assembly.GetManifestResourceStream("VitSharp.imagenet-labels.json")
            ?? throw new InvalidOperationException("ImageNet labels resource missing");
        return JsonNode.Parse(s)!.AsArray().Select(n => (string?)n ?? "").ToArray();
    });

    /// <summary>The 1000 ImageNet-1k class names in index order (public-domain "simple labels").</summary>
    public static string[] ImageNet => ImageNetNames.Value;

    public static string[] Read(string path)
    {
        if (!File.Exists(path)) throw new VitSharpException($"{path}: labels file not found");
        var text = File.ReadAllText(path);
        if (text.TrimStart().StartsWith('['))
        {
            try
            {
                return JsonNode.Parse(text)!.AsArray().Select(n => n is JsonValue v ? v.ToString() : n?.ToJsonString() ?? "").ToArray();
            }
            catch (Exception e) when (e is JsonException or InvalidOperationException)
            {
                throw new VitSharpException($"{path}: not a JSON array of names: {e.Message}");
            }
        }
        return text.Split('\n').Select(l => l.TrimEnd('\r')).Where(l => l.Length > 0).ToArray();
    }
}
