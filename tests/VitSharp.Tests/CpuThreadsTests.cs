using VitSharp.Backends.Cpu;

namespace VitSharp.Tests;

public class CpuThreadsTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(1000)]
    public void ForRunsEveryIndexExactlyOnce(int count)
    {
        var hits = new int[count];
        for (int rep = 0; rep < 50; rep++) CpuThreads.For(count, i => Interlocked.Increment(ref hits[i]));
        Assert.All(hits, h => Assert.Equal(50, h));
    }

    [Fact]
    public void NestedRegionsRunAndComplete()
    {
        var hits = new int[8 * 16];
        CpuThreads.For(8, i => CpuThreads.For(16, j => Interlocked.Increment(ref hits[i * 16 + j])));
        Assert.All(hits, h => Assert.Equal(1, h));
    }

    [Fact]
    public void ForRangeCoversWithoutOverlap()
    {
        foreach (int n in new[] { 1, 7, 64, 1001 })
        {
            var hits = new int[n];
            CpuThreads.ForRange(n, 3, (s, e) => { for (int i = s; i < e; i++) Interlocked.Increment(ref hits[i]); });
            Assert.All(hits, h => Assert.Equal(1, h));
        }
    }

    [Fact]
    public void ExceptionsReachTheCaller()
    {
        Assert.Throws<InvalidOperationException>(() => CpuThreads.For(100, i => { if (i == 57) throw new InvalidOperationException("x"); }));
        var hits = 0;
        CpuThreads.For(100, i => Interlocked.Increment(ref hits));   // the pool still works afterwards
        Assert.Equal(100, hits);
    }
}
