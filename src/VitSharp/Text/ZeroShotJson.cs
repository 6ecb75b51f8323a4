using System.Text.Json;
using System.Text.Json.Nodes;

namespace VitSharp.Text;

/// <summary>Typed reads of the Hugging Face JSON files a two-tower folder holds (config.json, tokenizer_config.json).
/// As for the image models' config.json, the keys VitSharp reads are checked for their type; the many others
/// transformers writes are not read.</summary>
internal static class ZeroShotJson
{
    public static JsonObject Parse(string path)
    {
        try
        {
            return JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new VitSharpException($"{path}: not a JSON object");
        }
        catch (JsonException e) { throw new VitSharpException($"{path}: not valid JSON ({ErrorText.OneLine(e.Message)})", e); }
    }

    public static int? Int(string path, string key) => Int(Parse(path), key, path);

    private static JsonNode? Value(JsonObject o, string key) => o[key] is JsonValue v && v.GetValueKind() == JsonValueKind.Null ? null : o[key];

    public static int? Int(JsonObject o, string key, string file) => Value(o, key) switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<long>(out var l) => l is >= int.MinValue and <= int.MaxValue ? (int)l : int.MaxValue,
        JsonValue v when v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<double>(out var d) && d == Math.Floor(d) => d >= int.MaxValue ? int.MaxValue : d <= int.MinValue ? int.MinValue : (int)d,
        var n => throw new VitSharpException($"{file}: '{key}' must be an integer, not {n.ToJsonString()}"),
    };

    public static double? Number(JsonObject o, string key, string file) => Value(o, key) switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<double>(out var d) => d,
        var n => throw new VitSharpException($"{file}: '{key}' must be a number, not {n.ToJsonString()}"),
    };

    public static string? String(JsonObject o, string key, string file) => Value(o, key) switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        var n => throw new VitSharpException($"{file}: '{key}' must be a string, not {n.ToJsonString()}"),
    };
}
