using VitSharp.Inference;
using VitSharp.Models;
using VitSharp.Tensors;

namespace VitSharp.Tests.Inference;

/// <summary>The library's benchmark harness (what `vit bench` prints): real timings of a small model on the CPU.</summary>
public class BenchmarkTests
{
    private static readonly VitConfig Small = new()
    {
        ImageSize = 16, PatchSize = 8, EmbedDim = 32, Depth = 1, NumHeads = 2, MlpDim = 64, NumClasses = 3,
    };

    [Fact]
    public void CpuRunTimesTheForwardAndCountsFlopsWithModelCost()
    {
        var report = Benchmark.Run("small", Small, new Device(DeviceKind.Cpu), new BenchmarkOptions { Batch = 3, Iters = 2, Rounds = 3 });
        var r = Assert.Single(report.Results);
        Assert.Null(report.Profile);
        Assert.Equal(("small", "cpu", "f32", 3, "eager"), (r.Model, r.Device, r.DType, r.Batch, r.Mode));
        Assert.True(r.MsPerBatch > 0);
        Assert.Equal(ModelCost.ForwardFlops(Small), r.FlopsPerImage);
        Assert.Equal(3 * 1000 / r.MsPerBatch, r.ImagesPerSecond, 9);
        Assert.Equal(ModelCost.ForwardFlops(Small) * 3 / 1e9 / r.MsPerBatch, r.TflopsPerSecond, 12);
        Assert.Matches(@"^RESULT vitsharp small batch=3 dtype=f32 mode=eager ms/batch=\d+\.\d{3} images/s=\d+ TFLOP/s=\d+\.\d device=""cpu""$", r.ToString());
    }

    [Fact]
    public void MedianIsTheUpperMiddleValue()
    {
        Assert.Equal(2, Benchmark.Median([3, 1, 2]));
        Assert.Equal(3, Benchmark.Median([4, 1, 3, 2]));
        Assert.Throws<ArgumentException>(() => Benchmark.Median([]));
    }

    [Fact]
    public void BadCountsAreOneLine() =>
        Assert.Equal("--batch-size, --iters and --rounds must be positive",
            Assert.Throws<VitSharpException>(() => Benchmark.Run("small", Small, new Device(DeviceKind.Cpu), new BenchmarkOptions { Batch = 0 })).Message);
}
