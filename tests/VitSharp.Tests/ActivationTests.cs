using VitSharp.Backends.Cpu;

namespace VitSharp.Tests;

public class ActivationTests
{
    [Theory]
    [InlineData(0.1, 0.1124629160182849)]
    [InlineData(0.3, 0.3286267594591274)]
    [InlineData(0.5, 0.5204998778130465)]
    [InlineData(0.7, 0.6778011938374184)]
    [InlineData(1.0, 0.8427007929497149)]
    [InlineData(2.0, 0.9953222650189527)]
    [InlineData(3.0, 0.9999779095030014)]
    [InlineData(4.0, 0.9999999845827421)]
    [InlineData(5.0, 0.9999999999984626)]
    public void ErfMatchesReferenceValues(double x, double expected)
    {
        Assert.Equal(expected, Activations.Erf(x), 1e-14);
        Assert.Equal(-expected, Activations.Erf(-x), 1e-14);
    }
}
