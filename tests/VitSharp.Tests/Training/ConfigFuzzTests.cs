using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using VitSharp.Data.Transforms;
using VitSharp.Training;

namespace VitSharp.Tests.Training;

/// <summary>Mutated preprocessing recipes and training configs (bytes flipped, cut or spliced; every key given hostile
/// values, in the file and through --set): each is accepted or refused with one VitSharpException line naming the file
/// (or the --set), never another exception, within seconds. Seeded, so a failure reproduces.</summary>
public class ConfigFuzzTests : IDisposable
{
    private readonly string _tmp = Directory.CreateTempSubdirectory("vitsharp-config-fuzz-").FullName;

    public void Dispose() => Directory.Delete(_tmp, recursive: true);

    internal static readonly string[] HostileValues =
        ["\"three\"", "-1", "0", "null", "[]", "{}", "1e308", "-1e308", "true", "2.5", "-2147483649", "\"\"", "1e-320", "[1, 2, 3]", "{\"a\": 1}"];

    /// <summary>Seeded mutations of a text: a cut, bit flips, or JSON-ish characters spliced in.</summary>
    internal static IEnumerable<byte[]> Mutations(byte[] bytes, int seed, int count)
    {
        var rng = new Random(seed);
        for (int i = 0; i < count; i++)
        {
            var copy = (byte[])bytes.Clone();
            switch (i % 3)
            {
                case 0: copy = copy[..rng.Next(copy.Length)]; break;
                case 1: for (int j = 0, k = 1 + rng.Next(4); j < k; j++) copy[rng.Next(copy.Length)] ^= (byte)(1 << rng.Next(8)); break;
                default: for (int j = 0, k = 1 + rng.Next(3); j < k; j++) copy[rng.Next(copy.Length)] = (byte)"0123456789-.,:[]{}\"e "[rng.Next(21)]; break;
            }
            yield return copy;
        }
    }

    /// <summary>Every leaf key of a JSON object, dotted ("optimizer.lr").</summary>
    internal static IEnumerable<string> Leaves(JsonObject o, string prefix = "")
    {
        foreach (var (k, v) in o)
            if (v is JsonObject inner) foreach (var l in Leaves(inner, prefix + k + ".")) yield return l;
            else yield return prefix + k;
    }

    private static JsonObject With(JsonObject root, string dotted, string value)
    {
        var copy = root.DeepClone().AsObject();
        var parts = dotted.Split('.');
        var o = copy;
        foreach (var p in parts[..^1]) o = o[p]!.AsObject();
        o[parts[^1]] = JsonNode.Parse(value);
        return copy;
    }

    private static void TypedOrAccepted(Action load, string names, string what, ref int accepted, ref int refused)
    {
        try { load(); accepted++; }
        catch (VitSharpException e)
        {
            refused++;
            Assert.False(e.Message.Contains('\n'), $"{what}: two lines: {e.Message}");
            Assert.True(e.Message.StartsWith(names, StringComparison.Ordinal), $"{what}: '{e.Message}' does not name {names}");
        }
        catch (Exception e) { Assert.Fail($"{what}: {e.GetType().Name}: {e.Message}"); }
    }

    [Fact]
    public void MutatedRecipesGiveTypedErrors()
    {
        var sw = Stopwatch.StartNew();
        int accepted = 0, refused = 0, n = 0;
        foreach (var recipe in new[] { PreprocessRecipe.Timm(), PreprocessRecipe.Google(), PreprocessRecipe.HuggingFace() })
        {
            var json = recipe.ToJson();
            var path = Path.Combine(_tmp, "recipe.json");
            foreach (var m in Mutations(Encoding.UTF8.GetBytes(json), json.Length, 200))
            {
                File.WriteAllBytes(path, m);
                TypedOrAccepted(() => PreprocessRecipe.Load(path), path, $"mutation {n++}: {Encoding.UTF8.GetString(m)}", ref accepted, ref refused);
            }
            var root = JsonNode.Parse(json)!.AsObject();
            foreach (var key in Leaves(root))
                foreach (var v in HostileValues)
                {
                    File.WriteAllText(path, With(root, key, v).ToJsonString());
                    TypedOrAccepted(() => PreprocessRecipe.Load(path), path, $"{key}={v}", ref accepted, ref refused);
                }
        }
        Assert.InRange(refused, 400, 10_000);
        Assert.InRange(accepted, 20, 10_000); // some mutations stay valid: the fuzz is not just broken JSON
        Assert.InRange(sw.Elapsed.TotalSeconds, 0, 30);
        // The ranges a mutation can reach, named.
        File.WriteAllText(Path.Combine(_tmp, "big.json"), """{"image_size": 1000000}""");
        Assert.Equal($"{Path.Combine(_tmp, "big.json")}: recipe 'custom': image size 1000000; it must be in 1..16384",
            Assert.Throws<VitSharpException>(() => PreprocessRecipe.Load(Path.Combine(_tmp, "big.json"))).Message);
        File.WriteAllText(Path.Combine(_tmp, "null.json"), """{"mean": null}""");
        Assert.EndsWith("mean, std, train_scale and train_ratio must be arrays, not null",
            Assert.Throws<VitSharpException>(() => PreprocessRecipe.Load(Path.Combine(_tmp, "null.json"))).Message);
    }

    [Theory]
    [InlineData("cifar10_vit_tiny.json")]
    [InlineData("imagenette_finetune.json")]
    public void MutatedTrainConfigsGiveTypedErrors(string file)
    {
        var path = CifarTrainingTests.RepoFile("configs", file);
        var text = File.ReadAllText(path);
        var sw = Stopwatch.StartNew();
        int accepted = 0, refused = 0, n = 0;
        foreach (var m in Mutations(Encoding.UTF8.GetBytes(text), file.Length, 200))
        {
            var s = Encoding.UTF8.GetString(m);
            TypedOrAccepted(() => TrainConfig.Parse(s, null, "fuzz.json"), "fuzz.json", $"mutation {n++}: {s}", ref accepted, ref refused);
        }
        var root = JsonNode.Parse(text, documentOptions: new System.Text.Json.JsonDocumentOptions { CommentHandling = System.Text.Json.JsonCommentHandling.Skip })!.AsObject();
        foreach (var key in Leaves(root))
            foreach (var v in HostileValues)
            {
                // In the file, and as --set (whose errors name the --set, not the file).
                TypedOrAccepted(() => TrainConfig.Parse(With(root, key, v).ToJsonString(), null, "fuzz.json"), "fuzz.json", $"{key}={v}", ref accepted, ref refused);
                TypedOrAccepted(() => TrainConfig.Parse(text, [$"{key}={v}"], "fuzz.json"), $"--set {key}={v}: ", $"--set {key}={v}", ref accepted, ref refused);
            }
        // --set of keys that do not exist, or malformed assignments.
        foreach (var set in new[] { "model.embed_dimm=32", "=1", "epochs", "optimizer=3", "optimizer.lr.x=1", "data..path=x" })
            TypedOrAccepted(() => TrainConfig.Parse(text, [set], "fuzz.json"), "", $"--set {set}", ref accepted, ref refused);
        Assert.InRange(refused, 300, 100_000);
        Assert.InRange(accepted, 10, 100_000);
        Assert.InRange(sw.Elapsed.TotalSeconds, 0, 30);
    }
}
