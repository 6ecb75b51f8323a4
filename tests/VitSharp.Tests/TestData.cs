using System.Text.Json.Nodes;
using VitSharp.Checkpoints;

namespace VitSharp.Tests;

/// <summary>Where reference data lives: the committed refs-small copy, and ../shared when this checkout has it.</summary>
public static class TestData
{
    public static string Small(params string[] parts) =>
        Path.Combine([AppContext.BaseDirectory, "Data", "refs-small", .. parts]);

    /// <summary>The shared folder beside the repository (…/shared), or null on a clone without it.</summary>
    public static string? SharedRoot
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "shared");
                if (Directory.Exists(Path.Combine(candidate, "refs"))) return candidate;
            }
            return null;
        }
    }

    public static string Shared(params string[] parts) =>
        Path.Combine([SharedRoot ?? throw new InvalidOperationException("../shared is absent"), .. parts]);

    public static JsonObject Meta(string folder) => (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "meta.json")))!;

    public static int Heads(string folder)
    {
        var m = Meta(folder);
        var kw = (JsonObject?)m["timm_vit_kwargs"] ?? throw new InvalidOperationException("no timm_vit_kwargs");
        return (int)kw["num_heads"]!;
    }

    /// <summary>n floats uniform in [−scale, scale).</summary>
    public static float[] Uniform(Random rng, long n, double scale = 1) =>
        Enumerable.Range(0, checked((int)n)).Select(_ => (float)((rng.NextDouble() * 2 - 1) * scale)).ToArray();

    public static float MaxAbsDiff(HostArray a, HostArray b)
    {
        Assert.Equal(b.Shape, a.Shape);
        float m = 0;
        for (int i = 0; i < a.Data.Length; i++)
        {
            float d = Math.Abs(a.Data[i] - b.Data[i]);
            if (float.IsNaN(d)) return float.NaN;
            m = Math.Max(m, d);
        }
        return m;
    }
}

/// <summary>A fact that needs ../shared; skipped with a message when the checkout has none.</summary>
public sealed class SharedFactAttribute : FactAttribute
{
    public SharedFactAttribute()
    {
        if (TestData.SharedRoot is null) Skip = "needs ../shared (reference data beside the repository); absent in this checkout";
    }
}

public sealed class SharedTheoryAttribute : TheoryAttribute
{
    public SharedTheoryAttribute()
    {
        if (TestData.SharedRoot is null) Skip = "needs ../shared (reference data beside the repository); absent in this checkout";
    }
}
