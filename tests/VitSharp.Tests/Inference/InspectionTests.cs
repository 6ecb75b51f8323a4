using VitSharp.Checkpoints;
using VitSharp.Data.Codecs;
using VitSharp.Inference;
using VitSharp.Tests.Cli;

namespace VitSharp.Tests.Inference;

public class InspectionTests
{
    [Fact]
    public void PcaRecoversPlantedFilterDirections()
    {
        // Filters = 3·a·u + 1·b·v + tiny noise with orthonormal u, v over C·P·P = 12 values; the ±1 coefficients
        // a = (+,+,−,−,…), b = (+,−,+,−,…) have zero mean and zero correlation over every 4 filters.
        int d = 64, n = 12;
        var u = new double[n]; var v = new double[n];
        u[0] = u[5] = Math.Sqrt(0.5); v[1] = v[7] = v[9] = v[11] = 0.5;
        var rng = new Random(3);
        var w = new float[d * n];
        for (int i = 0; i < d; i++)
        {
            double a = i % 4 < 2 ? 1 : -1, b = i % 2 == 0 ? 1 : -1;
            for (int j = 0; j < n; j++) w[i * n + j] = (float)(3 * a * u[j] + b * v[j] + 1e-4 * (rng.NextDouble() - 0.5));
        }
        foreach (var filters in new[] { 8, 64 }) // both Gram-matrix branches (d < n and d ≥ n)
        {
            var (pcs, variance) = Inspection.PatchEmbeddingPca(new HostArray([filters, 3, 2, 2], w[..(filters * n)]), 2);
            Assert.Equal([2, 3, 2, 2], pcs.Shape);
            double dotU = Enumerable.Range(0, n).Sum(j => pcs.Data[j] * u[j]);
            double dotV = Enumerable.Range(0, n).Sum(j => pcs.Data[n + j] * v[j]);
            Assert.Equal(1.0, Math.Abs(dotU), 4);
            Assert.Equal(1.0, Math.Abs(dotV), 4);
            Assert.True(variance[0] > variance[1]);
            Assert.Equal(1.0, variance[0] + variance[1], 3);
        }
    }

    [Fact]
    public void PositionSimilarityIsCosine()
    {
        // prefix token, then a 1×3 grid: e1, e1+e2, -e1
        var pos = new HostArray([1, 4, 2], [9, 9, 1, 0, 1, 1, -1, 0]);
        var s = Inspection.PositionSimilarity(pos, 1, 1, 3);
        Assert.Equal([3, 3], s.Shape);
        Assert.Equal(1f, s.Data[0], 6);
        Assert.Equal((float)Math.Sqrt(0.5), s.Data[1], 6);
        Assert.Equal(-1f, s.Data[2], 6);
        Assert.Equal(s.Data[1], s.Data[3], 6);
    }

    [Fact]
    public void AttentionDistanceOfUniformAndSelfAttention()
    {
        int grid = 3, patch = 16, t = 1 + grid * grid;
        var uniform = new float[t * t];
        var self = new float[t * t];
        for (int i = 0; i < t; i++)
        {
            for (int j = 0; j < t; j++) uniform[i * t + j] = 1f / t;
            self[i * t + i] = 1;
        }
        var d = Inspection.AttentionDistance([new HostArray([1, 1, t, t], uniform), new HostArray([1, 1, t, t], self)], 1, grid, patch);
        double expected = 0;
        for (int a = 0; a < 9; a++)
            for (int b = 0; b < 9; b++) expected += Math.Sqrt(Math.Pow((a / 3 - b / 3) * 16, 2) + Math.Pow((a % 3 - b % 3) * 16, 2)) / 81;
        Assert.Equal(expected, d[0][0], 9);
        Assert.Equal(0, d[1][0], 12);
    }

    [Fact]
    public void RolloutFollowsWhereTheClassTokenLooks()
    {
        int grid = 2, t = 5;
        var a = new float[t * t];
        for (int i = 0; i < t; i++) a[i * t + 3] = 1; // every token attends to patch 2 (token 3)
        var map = Inspection.AttentionRollout([new HostArray([1, 1, t, t], a), new HostArray([1, 1, t, t], a)], 0, grid);
        Assert.Equal(1f, map.Data[2]);
        Assert.Equal(0f, map.Data.Where((_, i) => i != 2).Max());
    }

    [Fact]
    public void JacobiEigenOfAKnownMatrix()
    {
        var (values, vectors) = Inspection.SymmetricEigen(new double[,] { { 2, 1 }, { 1, 2 } });
        Assert.Equal([1.0, 3.0], values.Order().Select(v => Math.Round(v, 12)));
        int big = values[0] > values[1] ? 0 : 1;
        Assert.Equal(Math.Sqrt(0.5), Math.Abs(vectors[0, big]), 12);
    }
}

[Collection("cli")]
public class InspectCommandTests : IDisposable
{
    private readonly string _tmp = Directory.CreateTempSubdirectory("vitsharp-inspect-").FullName;

    public void Dispose() => Directory.Delete(_tmp, recursive: true);

    [Fact]
    public void WritesFiguresAndAttentionDistances()
    {
        var image = Path.Combine(AppContext.BaseDirectory, "Data", "images", "chelsea_crop128x96.png");
        var (code, _, err) = CliRunner.Run("inspect", "--checkpoint", TestData.Small("vit_tiny48", "model.safetensors"), "--heads", "2",
            "--output", _tmp, "--image", image, "--components", "6");
        Assert.True(code == 0, err);
        var pca = ImageCodecs.Decode(Path.Combine(_tmp, "patch_embedding_pca.png"));
        Assert.Equal(7 * (16 * 4 + 1) + 1, pca.Width);
        var sim = ImageCodecs.Decode(Path.Combine(_tmp, "position_embedding_similarity.png"));
        Assert.Equal(3 * (3 * 16 + 2), sim.Width);
        var rollout = ImageCodecs.Decode(Path.Combine(_tmp, "chelsea_crop128x96.rollout.png"));
        Assert.Equal(192, rollout.Width); // the 48×48 input the model saw, ×4
        Assert.True(File.Exists(Path.Combine(_tmp, "report.html")));
        var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(_tmp, "inspection.json")))!;
        var distances = json["mean_attention_distance_px"]!.AsArray();
        Assert.Equal(2, distances.Count); // layers
        Assert.Equal(2, distances[0]!.AsArray().Count); // heads
        Assert.All(distances.SelectMany(l => l!.AsArray()), v => Assert.InRange((double)v!, 0, 16 * Math.Sqrt(8)));
        Assert.Equal(6, json["patch_embedding_explained_variance"]!.AsArray().Count);
    }
}
