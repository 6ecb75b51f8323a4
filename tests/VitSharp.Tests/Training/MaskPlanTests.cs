using VitSharp.Backends.Cpu;
using VitSharp.Nn;
using VitSharp.Tensors;

namespace VitSharp.Tests.Training;

/// <summary>A recorded step's drop-path masks (MaskPlan) are the numbers an eager pass draws from the same RNG, site by
/// site in forward order, so a replayed step computes what the eager step computes.</summary>
public class MaskPlanTests
{
    private static readonly CpuBackend Cpu = CpuBackend.Instance;

    [Fact]
    public void PlannedMasksEqualTheEagerDrawsInForwardOrder()
    {
        var parameters = new ParameterSet(Cpu, [("w", [1])], DType.F32);
        var grads = new ParameterSet(Cpu, [("w", [1])], DType.F32);
        using var ws = new Workspace(Cpu);
        (int[] Shape, float Rate)[] sites = [([8, 5, 4], 0.1f), ([8, 5, 4], 0.3f), ([8, 2], 0.5f)];

        var eager = Pass.Train(Cpu, ws, parameters, grads, new Random(11), dropPathRate: 0.5f);
        var want = sites.Select(s => eager.Mask(s.Shape, 0, s.Rate)!.ToArray()).ToArray();

        using var plan = new MaskPlan(Cpu, 64);
        var recorded = Pass.TrainRecorded(Cpu, ws, parameters, grads, plan, 0.5f);
        var slots = sites.Select(s => recorded.Mask(s.Shape, 0, s.Rate)!).ToArray();
        Assert.Equal(3, plan.Sites);
        Assert.Null(recorded.Mask([8, 5, 4], 0, 0)); // a block at rate 0 draws nothing, as eagerly
        plan.Draw(new Random(11));
        for (int i = 0; i < sites.Length; i++) Assert.Equal(want[i], slots[i].ToArray());
        Assert.Contains(0f, want.SelectMany(w => w)); // the draws do drop samples
        Assert.All(want[2], v => Assert.True(v == 0f || v == 2f));
        Assert.Throws<NotSupportedException>(() => recorded.Mask([8, 4], 0.1f, 0.1f)); // dropout is never recorded

        plan.Draw(null); // no RNG: nothing dropped
        Assert.All(slots.SelectMany(s => s.ToArray()), v => Assert.Equal(1f, v));
        parameters.Dispose();
        grads.Dispose();
    }
}
