using VitSharp.Backends;
using VitSharp.Backends.Cpu;
using VitSharp.Checkpoints;
using VitSharp.Data;
using VitSharp.Data.Datasets;
using VitSharp.Models;
using VitSharp.Tensors;
using VitSharp.Tests.Models;
using VitSharp.Training;

namespace VitSharp.Tests.Training;

/// <summary>
/// DeiT-style distillation: the loss op against hand-computed values and a double reference, its gradient and the
/// distillation-token model's by finite differences, the teacher's checks and re-normalisation, and short CPU runs
/// (a teacher trained in the test, then a student) that learn, save, reload, evaluate and resume.
/// </summary>
public class DistillationTests
{
    private static readonly ITrainingBackend Cpu = CpuBackend.Instance;

    /// <summary>DeiT's loss in double from the logits: (1 − α)·mean CE(cls, targets) + α·mean D(dist, teacher).</summary>
    internal static double Reference(float[] cls, float[] dist, float[] teacher, float[] targets, int batch, int k, DistillationKind kind, float alpha, float tau)
    {
        double ce = 0, kd = 0;
        for (int b = 0; b < batch; b++)
        {
            int row = b * k;
            double Lse(float[] v, double inv)
            {
                double m = double.NegativeInfinity, z = 0;
                for (int j = 0; j < k; j++) m = Math.Max(m, v[row + j] * inv);
                for (int j = 0; j < k; j++) z += Math.Exp(v[row + j] * inv - m);
                return m + Math.Log(z);
            }
            double l = Lse(cls, 1);
            for (int j = 0; j < k; j++) ce -= targets[row + j] * (cls[row + j] - l);
            if (kind == DistillationKind.Hard)
            {
                int arg = 0;
                for (int j = 1; j < k; j++) if (teacher[row + j] > teacher[row + arg]) arg = j;
                kd += Lse(dist, 1) - dist[row + arg];
            }
            else
            {
                double inv = 1.0 / tau, ls = Lse(dist, inv), lt = Lse(teacher, inv), kl = 0;
                for (int j = 0; j < k; j++)
                {
                    double lp = teacher[row + j] * inv - lt, lq = dist[row + j] * inv - ls;
                    kl += Math.Exp(lp) * (lp - lq);
                }
                kd += kl * tau * tau / k; // kl_div(…, 'sum')·τ²/numel, numel = B·K, as a batch mean
            }
        }
        return (1 - alpha) * ce / batch + alpha * kd / batch;
    }

    private static (float Loss, float[] Grad) Op(float[] student, float[] teacher, int batch, int k, DistillationKind kind, float tau, float scale)
    {
        using var s = Tensor.FromArray((float[])student.Clone(), batch, k);
        using var t = Tensor.FromArray((float[])teacher.Clone(), batch, k);
        using var d = Tensor.Host(batch, k);
        using var stats = Tensor.FromArray([0.25f, 3f, 0f, 0f], 4);
        Cpu.DistillationLoss(s, t, kind, tau, d, scale, stats);
        var st = stats.ToArray();
        Assert.Equal(3f, st[1]); // the accuracy count is the class head's business
        return (st[0] - 0.25f, d.ToArray());
    }

    [Fact]
    public void HardLossMatchesHandComputedValues()
    {
        // Row 0: a uniform student, the teacher's arg-max 0: CE = ln 3. Row 1: softmax(ln 2, 0, 0) = (½, ¼, ¼), arg-max 1: ln 4.
        float ln2 = MathF.Log(2);
        var (loss, grad) = Op([0, 0, 0, ln2, 0, 0], [2, 1, 0, 0, 5, 1], 2, 3, DistillationKind.Hard, tau: 3f, scale: 1f);
        Assert.Equal((Math.Log(3) + Math.Log(4)) / 2, loss, 6);
        // (softmax − onehot(argmax teacher)) / B
        double[] want = [-1.0 / 3, 1.0 / 6, 1.0 / 6, 0.25, -0.375, 0.125];
        for (int i = 0; i < 6; i++) Assert.Equal(want[i], grad[i], 6);
        // The gradient scale multiplies both (the trainer passes α / accumulation steps).
        var (half, halfGrad) = Op([0, 0, 0, ln2, 0, 0], [2, 1, 0, 0, 5, 1], 2, 3, DistillationKind.Hard, 3f, 0.5f);
        Assert.Equal(loss / 2, half, 6);
        Assert.Equal(grad[0] / 2, halfGrad[0], 6);
    }

    [Fact]
    public void SoftLossMatchesHandComputedValues()
    {
        // τ = 2: teacher/τ = (ln 2, 0, 0) → p = (½, ¼, ¼); a uniform student q = ⅓. KL(p‖q) = ½ ln 1.5 + ½ ln 0.75 = ½ ln 1.125;
        // DeiT's term: KL · τ² / numel (B·K = 3) = (2/3) ln 1.125. Its gradient (q − p)·τ/(B·K) = (−1/9, 1/18, 1/18).
        float ln2 = MathF.Log(2);
        var (loss, grad) = Op([0, 0, 0], [2 * ln2, 0, 0], 1, 3, DistillationKind.Soft, tau: 2f, scale: 1f);
        Assert.Equal(2.0 / 3 * Math.Log(1.125), loss, 6);
        Assert.Equal(-1.0 / 9, grad[0], 6);
        Assert.Equal(1.0 / 18, grad[1], 6);
        Assert.Equal(1.0 / 18, grad[2], 6);
        // A student equal to its teacher costs nothing and gets no gradient.
        var (same, sameGrad) = Op([1, -2, 0.5f], [1, -2, 0.5f], 1, 3, DistillationKind.Soft, 4f, 1f);
        Assert.Equal(0, same, 6);
        Assert.All(sameGrad, g => Assert.Equal(0, g, 7));
    }

    [Theory]
    [InlineData(DistillationKind.Hard, 1f)]
    [InlineData(DistillationKind.Soft, 1f)]
    [InlineData(DistillationKind.Soft, 3f)]
    public void LossOpMatchesReferenceAndFiniteDifferences(DistillationKind kind, float tau)
    {
        const int b = 3, k = 7;
        var rng = new Random(11);
        float[] R() => Enumerable.Range(0, b * k).Select(_ => (float)(rng.NextDouble() * 6 - 3)).ToArray();
        float[] s = R(), t = R(), none = new float[b * k];
        // The KD term alone (α = 1: the class term has weight 0).
        double Ref(float[] x) => Reference(x, x, t, none, b, k, kind, 1f, tau);
        var (loss, grad) = Op(s, t, b, k, kind, tau, 1f);
        Assert.Equal(Ref(s), loss, 5);
        Assert.True(loss > 0.05, $"a real loss, not a degenerate one: {loss}");
        const float h = 1e-3f;
        for (int i = 0; i < s.Length; i++)
        {
            float saved = s[i];
            s[i] = saved + h; double up = Ref(s);
            s[i] = saved - h; double down = Ref(s);
            s[i] = saved;
            double numeric = (up - down) / (2 * h);
            Assert.True(Math.Abs(numeric - grad[i]) < 1e-5 + 1e-3 * Math.Abs(numeric), $"[{i}] analytic {grad[i]:G6}, numeric {numeric:G6}");
        }
    }

    [Fact]
    public void SeparateHeadsKeepInferenceTheMean()
    {
        var ckpt = DeiT();
        using var model = ckpt.CreateModel(Cpu);
        var input = Npy.Read(Path.Combine(FamilyParityTests.Dir("deit_distilled"), "input.npy"));
        var mean = model.Run(input).Data;
        using var tm = TrainableModel.Create(model);
        tm.SeparateHeads = true;
        using var x = Tensor.FromArray(input.Data, input.Shape);
        var cls = tm.Forward(x, rng: null).ToArray();
        var dist = tm.DistLogits!.ToArray();
        Assert.Equal(mean.Length, cls.Length);
        for (int i = 0; i < mean.Length; i++) Assert.Equal(mean[i], (cls[i] + dist[i]) * 0.5f, 5);
        Assert.Contains(Enumerable.Range(0, cls.Length), i => Math.Abs(cls[i] - dist[i]) > 1e-3); // two different heads
        // Without separate heads the training forward is the mean, and a distillation gradient is refused.
        tm.SeparateHeads = false;
        var joint = tm.Forward(x, rng: null).ToArray();
        for (int i = 0; i < mean.Length; i++) Assert.Equal(mean[i], joint[i], 5);
        Assert.Null(tm.DistLogits);
        using var dl = Tensor.Host(2, 5);
        Assert.Throws<InvalidOperationException>(() => tm.Backward(dl, dl));
    }

    private static Checkpoint DeiT() => Checkpoint.Load(Path.Combine(FamilyParityTests.Dir("deit_distilled"), "model.safetensors"),
        new LoadOptions { Heads = 2 });

    [Theory]
    [InlineData(DistillationKind.Hard)]
    [InlineData(DistillationKind.Soft)]
    public void DistTokenModelGradientsMatchFiniteDifferences(DistillationKind kind)
    {
        // timm's VisionTransformerDistilled (refs-families/deit_distilled) trained with separate heads on DeiT's loss against
        // fixed teacher logits: every parameter, through both heads, the distillation token and its position row.
        var ckpt = DeiT();
        using var model = ckpt.CreateModel(Cpu);
        var input = Npy.Read(Path.Combine(FamilyParityTests.Dir("deit_distilled"), "input.npy"));
        const int k = 5, b = 2;
        const float alpha = 0.6f, tau = 2f;
        int[] labels = [1, 4];
        var targets = Targets.Smoothed(labels, k, 0.1f);
        float[] teacher = [3, -1, 0.5f, 2, -2, 0, 1, -1, 2.5f, 0.2f];
        using var tm = TrainableModel.Create(model);
        tm.SeparateHeads = true;
        using var x = Tensor.FromArray(input.Data, input.Shape);
        double Loss()
        {
            var cls = tm.Forward(x, rng: null).ToArray();
            return Reference(cls, tm.DistLogits!.ToArray(), teacher, targets, b, k, kind, alpha, tau);
        }
        Dictionary<string, HostArray> grads;
        {
            using var t = Tensor.FromArray(targets, b, k);
            using var tt = Tensor.FromArray(teacher, b, k);
            using var dCls = Tensor.Host(b, k);
            using var dDist = Tensor.Host(b, k);
            using var stats = Tensor.FromArray(new float[4], 4);
            tm.ZeroGrad();
            var cls = tm.Forward(x, rng: null);
            Cpu.CrossEntropyStats(cls, t, null, dCls, 1 - alpha, stats);
            Cpu.DistillationLoss(tm.DistLogits!, tt, kind, tau, dDist, alpha, stats);
            double want = Reference(cls.ToArray(), tm.DistLogits!.ToArray(), teacher, targets, b, k, kind, alpha, tau);
            Assert.Equal(want, stats.ToArray()[0], 5); // the step statistics hold the whole DeiT loss
            tm.Backward(dCls, dDist);
            grads = tm.Grads.ToHost();
        }
        var (_, _, failures) = WholeModelGradients.Check(model, grads, _ => false, Loss);
        Assert.True(failures.Count == 0, string.Join("; ", failures));
        foreach (var name in new[] { "dist_token", "head_dist.weight", "head_dist.bias", "head.weight", "cls_token" })
            Assert.Contains(grads[name].Data, v => Math.Abs(v) > 1e-6);
        // The distillation token's position row (row 1 of pos_embed) is trained too.
        int d = ckpt.Config.EmbedDim;
        Assert.Contains(grads["pos_embed"].Data.Skip(d).Take(d), v => Math.Abs(v) > 1e-6);
    }

    [Fact]
    public void FineTuningADeiTCheckpointGivesBothHeadsTheNewClasses()
    {
        var (cfg, w) = FineTune.Prepare(Path.Combine(FamilyParityTests.Dir("deit_distilled"), "model.safetensors"), null, 3, heads: 2);
        Assert.True(((VitConfig)cfg).DistToken);
        Assert.Equal([3, 48], w["head_dist.weight"].Shape);
        Assert.All(w["head_dist.weight"].Data, v => Assert.Equal(0f, v));
        using var m = VisionModel.Create(cfg, Cpu);
        m.Load(w, "fine-tuning start");
        Assert.Equal(3, m.Config.NumClasses);
    }

    [Fact]
    public void RenormalisationFoldsIntoThePatchProjection()
    {
        // A teacher trained with ImageNet's mean/std, a student with CIFAR's 0.5/0.5: the folded teacher on the student's
        // batch gives the original teacher's logits on the batch re-normalised per channel.
        float[] ms = [0.5f, 0.5f, 0.5f], ss = [0.5f, 0.5f, 0.5f], mt = [0.485f, 0.456f, 0.406f], st = [0.229f, 0.224f, 0.225f];
        var (a, bShift) = Distillation.Renormalisation(ms, ss, mt, st, 3);
        Assert.Equal(0.5 / 0.224, a[1], 5);
        Assert.Equal((0.5 - 0.406) / 0.225, bShift[2], 5);
        var (one, zero) = Distillation.Renormalisation([0.5f], [0.5f], ms, ss, 3);
        Assert.All(one, v => Assert.Equal(1f, v));
        Assert.All(zero, v => Assert.Equal(0f, v));

        var ckpt = DeiT();
        var input = Npy.Read(Path.Combine(FamilyParityTests.Dir("deit_distilled"), "input.npy"));
        using var original = ckpt.CreateModel(Cpu);
        var renorm = (float[])input.Data.Clone();
        int plane = 32 * 32;
        for (int i = 0; i < renorm.Length; i++) { int c = i / plane % 3; renorm[i] = (input.Data[i] * ss[c] + ms[c] - mt[c]) / st[c]; }
        var want = original.Run(new HostArray(input.Shape, renorm)).Data;
        using var folded = ckpt.CreateModel(Cpu);
        var w = folded.Parameters.ToHost();
        Distillation.Fold(w["patch_embed.proj.weight"], w["patch_embed.proj.bias"], a, bShift);
        folded.Load(w, "folded");
        var got = folded.Run(input).Data;
        for (int i = 0; i < want.Length; i++) Assert.Equal(want[i], got[i], 4);
        Assert.Contains(Enumerable.Range(0, want.Length), i => Math.Abs(want[i] - original.Run(input).Data[i]) > 1e-2); // it mattered
    }

    // --- a teacher file, configs, data ---

    private static string TempDir() => Directory.CreateTempSubdirectory("vitsharp-distill-").FullName;

    private static string Q(string s) => System.Text.Json.JsonSerializer.Serialize(s);

    private static TrainConfig Config(string output, string? teacher, bool distToken, string type = "hard", int epochs = 4, params string[] more) =>
        TrainConfig.Parse($$"""
        {
          "model": { "architecture": "vit", "img_size": 32, "patch_size": 8, "embed_dim": 32, "depth": 1, "num_heads": 2, "mlp_dim": 64, "dist_token": {{(distToken ? "true" : "false")}} },
          "data": { "horizontal_flip": false },
          "optimizer": { "name": "adamw", "lr": 0.003 },
          "schedule": { "warmup_steps": 2 },
          "batch_size": 32, "epochs": {{epochs}}, "label_smoothing": 0.1, "log_every_steps": 1, "seed": 3
        }
        """, [$"output={Q(output)}", .. teacher is null ? Array.Empty<string>() : [$"distillation.teacher={Q(teacher)}", $"distillation.type={type}"], .. more]);

    /// <summary>Four classes told apart by the colour of a square at a random place (red, green, blue, grey) on noise
    /// whose tint varies; seeded per image.</summary>
    internal sealed class Quadrants(int count, int seed) : IImageDataset
    {
        public int Count => count;
        public IReadOnlyList<string> Classes { get; } = ["red", "green", "blue", "grey"];
        public int Label(int index) => index % 4;

        public Image Load(int index)
        {
            var rng = new Random(seed * 7919 + index);
            var px = new byte[32 * 32 * 3];
            int k = Label(index), side = rng.Next(12, 24), y0 = rng.Next(0, 32 - side), x0 = rng.Next(0, 32 - side);
            var tint = new[] { rng.Next(40, 110), rng.Next(40, 110), rng.Next(40, 110) };
            var colour = new int[3];
            for (int c = 0; c < 3; c++) colour[c] = k == 3 ? 150 : c == k ? 220 : 50;
            for (int y = 0; y < 32; y++)
                for (int x = 0; x < 32; x++)
                    for (int c = 0; c < 3; c++)
                    {
                        bool inside = y >= y0 && y < y0 + side && x >= x0 && x < x0 + side;
                        px[(y * 32 + x) * 3 + c] = (byte)Math.Clamp((inside ? colour[c] : tint[c]) + rng.Next(-30, 30), 0, 255);
                    }
            return new Image(32, 32, 3, px);
        }
    }

    /// <summary>A teacher trained in the test (depth 2, width 48) on the quadrant data; its model.safetensors.</summary>
    private static string TrainTeacher(IImageDataset train, IImageDataset val)
    {
        var dir = TempDir();
        var cfg = Config(dir, null, false, "hard", 4, "model.embed_dim=48", "model.depth=2", "model.mlp_dim=96");
        using var t = new Trainer(cfg, train, val);
        var r = t.Run();
        Assert.True(r.LastEval!.Top1 >= 0.9, $"the teacher learns the colours: {r.LastEval.Top1:P1}");
        return Path.Combine(dir, Trainer.ModelFile);
    }

    private static readonly Lazy<(Quadrants Train, Quadrants Val, string Teacher)> Setup = new(() =>
    {
        var train = new Quadrants(256, 1);
        var val = new Quadrants(64, 2);
        return (train, val, TrainTeacher(train, val));
    });

    [Theory]
    [InlineData("hard", true)]
    [InlineData("soft", true)]
    [InlineData("hard", false)]
    public void StudentLearnsSavesReloadsAndEvaluates(string type, bool distToken)
    {
        var (train, val, teacher) = Setup.Value;
        var dir = TempDir();
        var cfg = Config(dir, teacher, distToken, type);
        double trainerTop1;
        List<float> losses;
        using (var t = new Trainer(cfg, train, val))
        {
            Assert.Equal(distToken, t.Distillation!.SeparateHeads);
            Assert.False(t.Distillation.Renormalised); // teacher and student share the data's normalisation
            var r = t.Run();
            trainerTop1 = r.LastEval!.Top1;
            losses = r.StepLosses.ToList();
        }
        Assert.Equal(32, losses.Count);
        Assert.True(losses.TakeLast(4).Average() < 0.7 * losses.Take(4).Average(), $"the loss falls: {losses[0]:F3} … {losses[^1]:F3}");
        Assert.True(trainerTop1 >= 0.8, $"{type}: top-1 {trainerTop1:P1}");

        // model.safetensors: timm's names (dist_token, head_dist.*), reloads as a distilled model, evaluates as in training.
        var model = Path.Combine(dir, Trainer.ModelFile);
        var raw = SafeTensors.Read(model);
        Assert.Equal(distToken, raw.ContainsKey("dist_token"));
        Assert.Equal(distToken, raw.ContainsKey("head_dist.weight"));
        var ck = Checkpoint.Load(model);
        Assert.Equal(distToken, ((VitConfig)ck.Config).DistToken);
        var aug = Evaluator.Preprocessing(ck);
        using var m = ck.CreateModel(Cpu);
        var e = Evaluator.Evaluate(m, new DataLoader(val, 16, aug, shuffle: false, dropLast: false, seed: 0));
        Assert.Equal(64, e.Count);
        Assert.Equal(trainerTop1, e.Top1, 2);
        // The run's configuration records the teacher.
        var stored = TrainCheckpoint.Load(Path.Combine(dir, Trainer.CheckpointFile)).RunConfigJson!;
        Assert.Contains(Q(teacher), stored);
    }

    [Fact]
    public void DistilledRunResumesExactlyWithItsTeacherOnly()
    {
        var (train, val, teacher) = Setup.Value;
        var straight = TempDir();
        List<float> want;
        using (var t = new Trainer(Config(straight, teacher, true, "soft", 2), train, val)) want = t.Run().StepLosses.ToList();
        var resumed = TempDir();
        var got = new List<float>();
        using (var t = new Trainer(Config(resumed, teacher, true, "soft", 2, "checkpoint_every_steps=3"), train, val) { InterruptAfterStep = 6 })
        {
            var r = t.Run();
            Assert.True(r.Interrupted);
            got.AddRange(r.StepLosses);
        }
        // Another teacher is another run: refused, naming the key.
        var other = Path.Combine(TempDir(), "teacher.safetensors");
        File.Copy(teacher, other);
        using (var t = new Trainer(Config(resumed, other, true, "soft", 2, "checkpoint_every_steps=3"), train, val))
        {
            var ex = Assert.Throws<VitSharpException>(() => t.Run());
            Assert.Contains("distillation.teacher", ex.Message);
        }
        using (var t = new Trainer(Config(resumed, teacher, true, "soft", 2, "checkpoint_every_steps=3"), train, val))
            got.AddRange(t.Run().StepLosses);
        Assert.Equal(want.Count, got.Count);
        for (int i = 0; i < want.Count; i++) Assert.Equal(BitConverter.SingleToInt32Bits(want[i]), BitConverter.SingleToInt32Bits(got[i]));
    }

    [Fact]
    public void TeacherErrorsNameTheFile()
    {
        var train = new Quadrants(64, 1);
        var dir = TempDir();
        var missing = Path.Combine(dir, "no-teacher.safetensors");
        var e1 = Assert.Throws<CheckpointException>(() => new Trainer(Config(dir, missing, true), train, null));
        Assert.Contains(missing, e1.Message);
        Assert.Contains("not found", e1.Message);

        // A 10-class teacher for 4-class data.
        var tenClasses = Path.Combine(dir, "ten.safetensors");
        var tc = new VitConfig { ImageSize = 32, PatchSize = 8, EmbedDim = 32, Depth = 1, NumHeads = 2, MlpDim = 64, NumClasses = 10 };
        Checkpoint.Save(tenClasses, tc, Initializer.Init(tc, 1));
        var e2 = Assert.Throws<CheckpointException>(() => new Trainer(Config(dir, tenClasses, true), train, null));
        Assert.StartsWith(tenClasses + ": ", e2.Message);
        Assert.Contains("10 classes but the data has 4", e2.Message);
        Assert.DoesNotContain('\n', e2.Message);

        // A teacher at 48×48 for a 32×32 student: both sizes named.
        var big = Path.Combine(dir, "big.safetensors");
        var bc = tc with { ImageSize = 48, NumClasses = 4 };
        Checkpoint.Save(big, bc, Initializer.Init(bc, 1));
        var e3 = Assert.Throws<CheckpointException>(() => new Trainer(Config(dir, big, true), train, null));
        Assert.Contains("48×48", e3.Message);
        Assert.Contains("32×32", e3.Message);

        // Class names in another order.
        var shuffled = Path.Combine(dir, "shuffled.safetensors");
        var sc = tc with { NumClasses = 4 };
        Checkpoint.Save(shuffled, sc, Initializer.Init(sc, 1), ["green", "red", "blue", "grey"]);
        var e4 = Assert.Throws<CheckpointException>(() => new Trainer(Config(dir, shuffled, true), train, null));
        Assert.Contains("class 0 is 'green'", e4.Message);
    }

    [Fact]
    public void ConfigKeysAreChecked()
    {
        var dir = TempDir();
        var ok = Config(dir, "t.safetensors", true, "soft", 4, "distillation.alpha=0.3", "distillation.tau=2");
        Assert.Equal("t.safetensors", ok.Distillation.Teacher);
        Assert.Equal(DistillationKind.Soft, ok.Distillation.ParseKind());
        Assert.Equal(0.3f, ok.Distillation.Alpha);
        Assert.True(((VitConfig)ok.BuildModelConfig(4)).DistToken);
        var d = TrainConfig.Parse("{}");
        Assert.Null(d.Distillation.Teacher);
        Assert.Equal(0.5f, d.Distillation.Alpha); // DeiT's defaults
        Assert.Equal("hard", d.Distillation.Type);
        Assert.Equal(1f, d.Distillation.Tau);
        Assert.False(((VitConfig)d.BuildModelConfig(4)).DistToken);

        var unknown = Assert.Throws<VitSharpException>(() => TrainConfig.Parse("""{ "distillation": { "teacher": "t", "temperature": 2 } }"""));
        Assert.Contains("unknown key 'distillation.temperature'", unknown.Message);
        var type = Assert.Throws<VitSharpException>(() => Config(dir, "t", true, "medium"));
        Assert.Contains("'distillation.type' is medium", type.Message);
        var alpha = Assert.Throws<VitSharpException>(() => Config(dir, "t", true, "hard", 4, "distillation.alpha=1.5"));
        Assert.Contains("distillation.alpha", alpha.Message);
        var tau = Assert.Throws<VitSharpException>(() => Config(dir, "t", true, "soft", 4, "distillation.tau=0"));
        Assert.Contains("distillation.tau", tau.Message);
        var bad = Assert.Throws<VitSharpException>(() => TrainConfig.Parse("""{ "model": { "dist_token": "yes" } }"""));
        Assert.Contains("model.dist_token", bad.Message);
    }
}
