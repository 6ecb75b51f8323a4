using VitSharp.Checkpoints;
using VitSharp.Models;
using VitSharp.Tensors;
using VitSharp.Training;

namespace VitSharp.Tests.Training;

/// <summary>
/// A whole model's parameter gradients against central finite differences of its own inference forward (cross-entropy
/// in double on the host, fp32 forwards): the check the conv-tokenizer and SeqPool tests share. Step h = 1e-2 as the
/// family gradient tests use; bound |numeric − analytic| ≤ 2e-3 + 2e-2·|numeric| (kinks a step crosses perturb the
/// numeric side a little; a wrong or missing term fails by far more).
/// </summary>
internal static class WholeModelGradients
{
    public const float Step = 1e-2f;

    public static double Bound(double numeric) => 2e-3 + 2e-2 * Math.Abs(numeric);

    /// <summary>Every parameter's gradient of the plain cross-entropy (no smoothing) at the model's loaded weights.</summary>
    public static Dictionary<string, HostArray> Analytic(VisionModel model, HostArray input, int[] labels)
    {
        int classes = ((VitConfig)model.Config).NumClasses;
        using var tm = TrainableModel.Create(model);
        using var x = Tensor.FromArray(input.Data, input.Shape);
        using var targets = Tensor.FromArray(Targets.Smoothed(labels, classes, 0f), labels.Length, classes);
        using var dlogits = Tensor.Host(labels.Length, classes);
        tm.ZeroGrad();
        var logits = tm.Forward(x, rng: null);
        tm.Be.SoftmaxCrossEntropy(logits, targets, dlogits);
        tm.Backward(dlogits);
        return tm.Grads.ToHost();
    }

    /// <summary>Checks every entry of the parameters <paramref name="everyEntry"/> names, and the largest, first, middle and
    /// last entry of the others; the model's weights are restored after. Returns how many were checked, the worst error
    /// as a fraction of the bound, and the entries outside it.</summary>
    public static (int Checked, double Worst, List<string> Failures) Check(VisionModel model, IReadOnlyDictionary<string, HostArray> grads,
        HostArray input, int[] labels, Func<string, bool> everyEntry) =>
        Check(model, grads, everyEntry, () => FamilyGradientTests.Loss(model, input, labels));

    /// <summary><see cref="Check(VisionModel, IReadOnlyDictionary{string, HostArray}, HostArray, int[], Func{string, bool})"/>,
    /// the count and worst error written to the test's output, and every checked entry asserted within the bound.</summary>
    public static void AssertWithinBound(VisionModel model, IReadOnlyDictionary<string, HostArray> grads, HostArray input, int[] labels,
        Func<string, bool> everyEntry, Xunit.Abstractions.ITestOutputHelper output)
    {
        var (checkedCount, worst, failures) = Check(model, grads, input, labels, everyEntry);
        output.WriteLine($"{checkedCount} gradient entries checked; worst error {worst:P0} of the bound");
        Assert.True(failures.Count == 0, $"{failures.Count} of {checkedCount}: " + string.Join("; ", failures.Take(20)));
    }

    /// <summary>The same for any loss of the model's current weights (e.g. DeiT's distillation loss).</summary>
    public static (int Checked, double Worst, List<string> Failures) Check(VisionModel model, IReadOnlyDictionary<string, HostArray> grads,
        Func<string, bool> everyEntry, Func<double> loss)
    {
        var weights = model.Parameters.ToHost();
        var failures = new List<string>();
        int count = 0;
        double worst = 0;
        foreach (var (name, g) in grads)
        {
            var w = weights[name];
            IEnumerable<int> which;
            if (everyEntry(name)) which = Enumerable.Range(0, g.Data.Length);
            else
            {
                int largest = 0;
                for (int i = 1; i < g.Data.Length; i++) if (Math.Abs(g.Data[i]) > Math.Abs(g.Data[largest])) largest = i;
                which = new[] { largest, 0, g.Data.Length / 2, g.Data.Length - 1 }.Distinct();
            }
            foreach (int i in which)
            {
                float saved = w.Data[i];
                w.Data[i] = saved + Step;
                model.Load(weights, "perturbed");
                double up = loss();
                w.Data[i] = saved - Step;
                model.Load(weights, "perturbed");
                double down = loss();
                w.Data[i] = saved;
                double numeric = (up - down) / (2 * Step), err = Math.Abs(numeric - g.Data[i]);
                count++;
                worst = Math.Max(worst, err / Bound(numeric));
                if (err > Bound(numeric)) failures.Add($"{name}[{i}]: analytic {g.Data[i]:G6}, numeric {numeric:G6}");
            }
        }
        model.Load(weights, "restored");
        return (count, worst, failures);
    }
}
