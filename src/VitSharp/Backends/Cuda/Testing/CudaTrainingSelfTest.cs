using VitSharp.Backends.Cpu;
using VitSharp.Checkpoints;
using VitSharp.Models;
using VitSharp.Tensors;
using VitSharp.Training;

namespace VitSharp.Backends.Cuda.Testing;

/// <summary>
/// GPU training checks, run by `vit cuda-selftest --train` and by [CudaFact] tests: every ITrainingBackend op against
/// the CPU backend on random inputs (F32 ≤ 1e-5 relative; BF16 with inputs rounded to bf16 first, ≤ 1e-2), whole-model
/// gradients and one AdamW step against PyTorch's on the reference training folders, and determinism (two seeded runs
/// of a few steps give the same bits).
/// </summary>
public static class CudaTrainingSelfTest
{
    private sealed record Spec(int[] Shape, float Scale, DType? Type = null);

    private sealed record Case(string Name, Spec[] Inputs, Spec[] Outputs, Action<ITrainingBackend, Tensor[], Tensor[]> Op);

    private static Spec S(float scale, params int[] shape) => new(shape, scale);
    private static Spec F(float scale, params int[] shape) => new(shape, scale, DType.F32);

    /// <summary>Attention as <c>Nn.Attention</c> trains it: from a log-sum-exp where the backend does, else from saved
    /// probabilities; y (when given) gets the forward output, dqkv (when given) the backward of dy.</summary>
    private static void TrainAttention(ITrainingBackend be, Tensor qkv, Tensor? y, int heads, float scale, Tensor? dy, Tensor? dqkv)
    {
        int b = qkv.Dim(0), n = qkv.Dim(1), width = qkv.Dim(2) / 3;
        using var ctx = be.Allocate([b, n, width], be.ComputeType);
        if (be.TrainsAttentionFromLse(heads, width / heads, n))
        {
            using var lse = be.Allocate([b, heads, n], DType.F32);
            be.AttentionTrainLse(qkv, ctx, lse, heads, scale);
            if (dy is not null) be.AttentionBackwardLse(dy, qkv, ctx, lse, dqkv!, heads, scale);
        }
        else
        {
            using var probs = be.Allocate([b, heads, n, n], be.ComputeType);
            be.Attention(qkv, ctx, heads, scale, probs);
            if (dy is not null) be.AttentionBackward(dy, qkv, probs, dqkv!, heads, scale);
        }
        if (y is not null) be.Copy(ctx, y);
    }

    public static List<CudaSelfTest.Result> OpParity(DType dtype, int seed = 4321)
    {
        var cases = new List<Case>();
        foreach (var (m, k, n) in new[] { (394, 192, 576), (130, 64, 10), (33, 48, 20) })
            foreach (var acc in new[] { false, true })
                cases.Add(new($"LinearBackward {m}x{k}->{n}{(acc ? " dx+=" : "")}", [S(1, m, n), S(1, m, k), S(0.1f, n, k)],
                    [S(1, m, k), F(1, n, k), F(1, n)], (be, i, o) => be.LinearBackward(i[0], i[1], i[2], o[0], o[1], o[2], acc)));
        cases.Add(new("LinearBackward no dx, no bias 64x32->16", [S(1, 64, 16), S(1, 64, 32), S(0.1f, 16, 32)], [F(1, 16, 32)],
            (be, i, o) => be.LinearBackward(i[0], i[1], i[2], null, o[0], null)));
        foreach (var (rows, d) in new[] { (394, 192), (130, 64), (8, 768) })
        {
            cases.Add(new($"LayerNormTrain {rows}x{d}", [S(2, rows, d), S(1, d), S(1, d)], [S(1, rows, d), S(1, rows), S(1, rows)],
                (be, i, o) => be.LayerNormTrain(i[0], i[1], i[2], 1e-6f, o[0], o[1], o[2])));
            cases.Add(new($"LayerNormTrain {rows}x{d} F32 stats", [S(2, rows, d), S(1, d), S(1, d)], [S(1, rows, d), F(1, rows), F(1, rows)],
                (be, i, o) => be.LayerNormTrain(i[0], i[1], i[2], 1e-6f, o[0], o[1], o[2])));
            foreach (var acc in new[] { false, true })
                cases.Add(new($"LayerNormBackward {rows}x{d}{(acc ? " dx+=" : "")}", [S(1, rows, d), S(2, rows, d), S(1, d), S(0.3f, rows), S(1, rows)],
                    [S(1, rows, d), F(1, d), F(1, d)], (be, i, o) => be.LayerNormBackward(i[0], i[1], i[2], i[3], i[4], o[0], o[1], o[2], acc)));
        }
        foreach (var act in new[] { Activation.Gelu, Activation.GeluTanh, Activation.Tanh, Activation.QuickGelu, Activation.Relu, Activation.Silu, Activation.None })
            cases.Add(new($"ActivationBackward {act}", [S(1, 77, 96), S(3, 77, 96)], [S(1, 77, 96)],
                (be, i, o) => be.ActivationBackward(act, i[0], i[1], o[0])));
        foreach (var (b, n, h, hd) in new[] { (2, 65, 3, 64), (2, 197, 2, 64), (3, 17, 4, 16), (2, 50, 2, 32), (3, 17, 2, 64), (2, 130, 3, 64) })
        {
            float scale = 1f / MathF.Sqrt(hd);
            cases.Add(new($"Attention+probs (training) B{b} N{n} H{h} hd{hd}", [S(1.5f, b, n, 3 * h * hd)], [S(1, b, n, h * hd), S(1, b, h, n, n)],
                (be, i, o) => be.Attention(i[0], o[0], h, scale, o[1])));
            cases.Add(new($"AttentionBackward B{b} N{n} H{h} hd{hd}", [S(1, b, n, h * hd), S(1.5f, b, n, 3 * h * hd), S(0.1f, b, h, n, n)],
                [S(1, b, n, 3 * h * hd)], (be, i, o) => be.AttentionBackward(i[0], i[1], i[2], o[0], h, scale)));
            // The layer's training path on each backend (flash on CUDA bf16 heads of 64, probabilities elsewhere): the
            // forward output and the whole backward, against the CPU's materialised probabilities.
            cases.Add(new($"Attention training forward (layer path) B{b} N{n} H{h} hd{hd}", [S(1.5f, b, n, 3 * h * hd)], [S(1, b, n, h * hd)],
                (be, i, o) => TrainAttention(be, i[0], o[0], h, scale, null, null)));
            cases.Add(new($"Attention training backward (layer path) B{b} N{n} H{h} hd{hd}", [S(1, b, n, h * hd), S(1.5f, b, n, 3 * h * hd)],
                [S(1, b, n, 3 * h * hd)], (be, i, o) => TrainAttention(be, i[1], null, h, scale, i[0], o[0])));
        }
        cases.Add(new("PatchEmbedBackward B2 3x32x48 p8 D64", [S(1, 2, 24, 64), S(1, 2, 3, 32, 48)], [F(1, 64, 3, 8, 8), F(1, 64)],
            (be, i, o) => be.PatchEmbedBackward(i[0], i[1], o[0], o[1], 8)));
        cases.Add(new("PatchEmbedBackward B3 3x32x32 p4 D192", [S(1, 3, 64, 192), S(1, 3, 3, 32, 32)], [F(1, 192, 3, 4, 4), F(1, 192)],
            (be, i, o) => be.PatchEmbedBackward(i[0], i[1], o[0], o[1], 4)));
        // CCT's convolutional tokenizer: the pool's backward (a gather recomputing each window's first maximum) and the
        // unfold's (col2im, a gather), at even and odd sizes.
        cases.Add(new("MaxPool3x3s2Backward B2 32x32x64", [S(1, 2, 256, 64), S(1, 2, 1024, 64)], [S(1, 2, 1024, 64)],
            (be, i, o) => be.MaxPool3x3s2Backward(i[0], i[1], o[0], 32, 32)));
        cases.Add(new("MaxPool3x3s2Backward B3 7x5x10", [S(1, 3, 12, 10), S(1, 3, 35, 10)], [S(1, 3, 35, 10)],
            (be, i, o) => be.MaxPool3x3s2Backward(i[0], i[1], o[0], 7, 5)));
        cases.Add(new("Im2Col3x3Backward B2 16x16x64", [S(1, 2, 256, 576)], [S(1, 2, 256, 64)], (be, i, o) => be.Im2Col3x3Backward(i[0], o[0], 16, 16)));
        cases.Add(new("Im2Col3x3Backward B3 7x5x10", [S(1, 3, 35, 90)], [S(1, 3, 35, 10)], (be, i, o) => be.Im2Col3x3Backward(i[0], o[0], 7, 5)));
        // CCT's sequence pooling (Kernels/seqpool.cu): dx = w·dy and the scores' gradient, CCT's 64 tokens and an odd shape.
        foreach (var (b, n, d) in new[] { (4, 64, 256), (3, 17, 40) })
            cases.Add(new($"SeqPoolBackward B{b} N{n} D{d}", [S(1, b, d), S(1, b, n, d), new([b, n], 0.1f, DType.F32)], [S(1, b, n, d), S(1, b, n, 1)],
                (be, i, o) => be.SeqPoolBackward(i[0], i[1], i[2], o[0], o[1])));
        cases.Add(new("EmbedBackward cls", [S(1, 3, 10, 64)], [S(1, 3, 9, 64), F(1, 1, 1, 64), F(1, 1, 10, 64)],
            (be, i, o) => be.EmbedBackward(i[0], o[0], o[1], o[2])));
        cases.Add(new("EmbedBackward no cls", [S(1, 3, 9, 64)], [S(1, 3, 9, 64), F(1, 1, 9, 64)],
            (be, i, o) => be.EmbedBackward(i[0], o[0], null, o[1])));
        cases.Add(new("MeanTokensBackward from 1", [S(1, 3, 40)], [S(1, 3, 17, 40)], (be, i, o) => be.MeanTokensBackward(i[0], 1, o[0])));
        cases.Add(new("SelectTokenBackward 0", [S(1, 3, 40)], [S(1, 3, 17, 40)], (be, i, o) => be.SelectTokenBackward(i[0], 0, o[0])));
        foreach (var (b, k) in new[] { (8, 10), (5, 1000) })
            cases.Add(new($"CrossEntropyStats B{b} K{k}", [S(4, b, k), new([b, k], 1, DType.F32), new([b], 0, DType.F32)], [S(1, b, k), F(0, 4)],
                (be, i, o) =>
                {
                    // Targets: a smoothed one-hot of labels 0..b-1 (mod k), set here so they are a distribution.
                    var t = new float[b * k];
                    var lab = new float[b];
                    for (int r = 0; r < b; r++) { lab[r] = (r * 7) % k; for (int j = 0; j < k; j++) t[r * k + j] = 0.1f / k + (j == (int)lab[r] ? 0.9f : 0f); }
                    be.CopyFromHost(t, i[1]);
                    be.CopyFromHost(lab, i[2]);
                    be.Zero(o[1]);
                    be.CrossEntropyStats(i[0], i[1], i[2], o[0], 0.5f, o[1]);
                }));
        // Distillation: the DeiT loss term (hard and soft, K of 10 and 1000), and the device ops a distillation-token
        // model needs (several prefix tokens, a scale into another tensor).
        foreach (var (b, k) in new[] { (8, 10), (5, 1000) })
            foreach (var (kind, tau) in new[] { (DistillationKind.Hard, 1f), (DistillationKind.Soft, 1f), (DistillationKind.Soft, 3f) })
                cases.Add(new($"DistillationLoss {kind} tau {tau} B{b} K{k}", [S(3, b, k), S(3, b, k)], [S(1, b, k), F(0, 4)],
                    (be, i, o) => { be.Zero(o[1]); be.DistillationLoss(i[0], i[1], kind, tau, o[0], 0.5f, o[1]); }));
        cases.Add(new("EmbedTokens cls+dist D64", [S(1, 3, 9, 64), S(1, 1, 1, 64), S(1, 1, 1, 64), S(1, 1, 11, 64)], [S(1, 3, 11, 64)],
            (be, i, o) => be.EmbedTokens(i[0], [i[1], i[2]], i[3], o[0])));
        cases.Add(new("EmbedTokens cls+dist+4 reg D40", [S(1, 2, 16, 40), S(1, 1, 1, 40), S(1, 1, 1, 40), S(1, 1, 4, 40), S(1, 1, 22, 40)],
            [S(1, 2, 22, 40)], (be, i, o) => be.EmbedTokens(i[0], [i[1], i[2], i[3]], i[4], o[0])));
        cases.Add(new("EmbedTokensBackward cls+dist D64", [S(1, 3, 11, 64)], [S(1, 3, 9, 64), F(1, 1, 1, 64), F(1, 1, 1, 64), F(1, 1, 11, 64)],
            (be, i, o) => be.EmbedTokensBackward(i[0], o[0], [o[1], o[2]], o[3])));
        cases.Add(new("EmbedTokensBackward cls+dist+4 reg D40", [S(1, 2, 22, 40)], [S(1, 2, 16, 40), F(1, 1, 1, 40), F(1, 1, 1, 40), F(1, 1, 4, 40), F(1, 1, 22, 40)],
            (be, i, o) => be.EmbedTokensBackward(i[0], o[0], [o[1], o[2], o[3]], o[4])));
        cases.Add(new("ScaleInto", [S(1, 4, 999)], [S(1, 4, 999)], (be, i, o) => be.ScaleInto(i[0], 0.5f, o[0])));
        cases.Add(new("ClipGradNorm 100003 (clipped)", [], [F(1, 100003), F(0, 4)], (be, i, o) => { be.Zero(o[1]); be.ClipGradNorm(o[0], 1f, o[1]); }));
        cases.Add(new("ClipGradNorm 1000 (under the limit)", [], [F(1, 1000), F(0, 4)], (be, i, o) => { be.Zero(o[1]); be.ClipGradNorm(o[0], 1e6f, o[1]); }));
        cases.Add(new("AdamWStep 10007", [F(0.1f, 10007)], [F(1, 10007), F(0.01f, 10007), F(0.01f, 10007)],
            (be, i, o) => be.AdamWStep(o[0], i[0], o[1], o[2], new AdamWArgs(1e-3f, 0.9f, 0.999f, 1e-8f, 0.05f, 3)))); // v ≥ 0: see RunCase
        cases.Add(new("SgdStep 10007 nesterov", [F(0.1f, 10007)], [F(1, 10007), F(0.1f, 10007)],
            (be, i, o) => be.SgdStep(o[0], i[0], o[1], new SgdArgs(0.03f, 0.9f, 1e-4f, true, false))));
        cases.Add(new("EmaUpdate 10007", [F(1, 10007)], [F(1, 10007)], (be, i, o) => be.EmaUpdate(o[0], i[0], 0.999f)));
        cases.Add(new("Multiply", [S(1, 1000), S(1, 1000)], [S(1, 1000)], (be, i, o) => be.Multiply(i[0], i[1], o[0])));
        cases.Add(new("MultiplyRows", [S(1, 4, 33, 10), F(2, 4)], [S(1, 4, 33, 10)], (be, i, o) => be.MultiplyRows(i[0], i[1], o[0])));
        cases.Add(new("Scale F32", [], [F(1, 999)], (be, i, o) => be.Scale(o[0], 0.37f)));
        cases.Add(new("Copy F32 -> compute", [F(1, 999)], [S(1, 999)], (be, i, o) => be.Copy(i[0], o[0])));

        var results = new List<CudaSelfTest.Result>();
        using var gpu = new CudaBackend(dtype);
        var rng = new Random(seed);
        foreach (var c in cases)
        {
            try { results.Add(RunCase(c, gpu, dtype, rng)); }
            catch (Exception e) { results.Add(new CudaSelfTest.Result($"{dtype} {c.Name}", double.NaN, double.NaN, 0, e.GetType().Name + ": " + e.Message)); }
        }
        results.Add(SumSquares(gpu, rng));
        return results;
    }

    private static float[] Rand(Random rng, long n, float scale, DType dtype) => CudaSelfTest.Random(rng, n, scale, dtype);

    private static CudaSelfTest.Result RunCase(Case c, CudaBackend gpu, DType dtype, Random rng)
    {
        DType T(Spec s) => s.Type ?? dtype;
        var ins = c.Inputs.Select(x => Rand(rng, Shape.Count(x.Shape), x.Scale, T(x))).ToArray();
        var outs = c.Outputs.Select(x => Rand(rng, Shape.Count(x.Shape), x.Scale, T(x))).ToArray();
        if (c.Name.StartsWith("AdamWStep")) for (int i = 0; i < outs[2].Length; i++) outs[2][i] = Math.Abs(outs[2][i]);
        var cpu = CpuBackend.Instance;
        var ci = c.Inputs.Select((s, k) => Tensor.FromArray((float[])ins[k].Clone(), s.Shape)).ToArray();
        var co = c.Outputs.Select((s, k) => Tensor.FromArray((float[])outs[k].Clone(), s.Shape)).ToArray();
        c.Op(cpu, ci, co);
        var gi = c.Inputs.Select((s, k) => { var t = gpu.Allocate(s.Shape, T(s)); gpu.CopyFromHost(ins[k], t); return t; }).ToArray();
        var go = c.Outputs.Select((s, k) => { var t = gpu.Allocate(s.Shape, T(s)); gpu.CopyFromHost(outs[k], t); return t; }).ToArray();
        c.Op(gpu, gi, go);
        double worstRel = 0, worstAbs = 0;
        for (int k = 0; k < go.Length; k++)
        {
            var got = new float[go[k].Length];
            gpu.CopyToHost(go[k], got);
            var (rel, abs) = CudaSelfTest.Compare(got, co[k].ToArray());
            worstRel = Math.Max(worstRel, rel);
            worstAbs = Math.Max(worstAbs, abs);
        }
        foreach (var t in ci.Concat(co).Concat(gi).Concat(go)) t.Dispose();
        return new CudaSelfTest.Result($"{dtype} {c.Name}", worstRel, worstAbs, dtype == DType.BF16 ? CudaSelfTest.Bf16Tolerance : CudaSelfTest.F32Tolerance);
    }

    private static CudaSelfTest.Result SumSquares(CudaBackend gpu, Random rng)
    {
        var a = Rand(rng, 300007, 1, DType.F32);
        using var t = gpu.Allocate([a.Length], DType.F32);
        gpu.CopyFromHost(a, t);
        using var h = Tensor.FromArray(a, a.Length);
        double want = CpuBackend.Instance.SumSquares(h), got = gpu.SumSquares(t);
        return new CudaSelfTest.Result("SumSquares F32 300007 (double)", Math.Abs(got - want) / want, Math.Abs(got - want), 1e-12);
    }

    /// <summary>One training step of a reference folder (model.safetensors, input.npy, labels.npy, loss.npy,
    /// grads.safetensors, model_after_adamw_step.safetensors; label smoothing 0.1, AdamW lr 1e-3, wd 0.05 on everything)
    /// on <paramref name="be"/>: loss, gradients (fp32) and the weights after the step.</summary>
    private static (float Loss, Dictionary<string, HostArray> Grads, Dictionary<string, HostArray> After) Step(string dir, ITrainingBackend be)
    {
        var heads = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "meta.json")))
            .RootElement.GetProperty("timm_vit_kwargs").GetProperty("num_heads").GetInt32();
        var ckpt = Checkpoint.Load(Path.Combine(dir, "model.safetensors"), new LoadOptions { Heads = heads });
        using var model = ckpt.CreateModel(be);
        using var tm = TrainableModel.Create(model);
        var input = Npy.Read(Path.Combine(dir, "input.npy"));
        var labels = Npy.ReadInt64(Path.Combine(dir, "labels.npy")).Select(l => (int)l).ToArray();
        int classes = ckpt.Config.NumClasses;
        using var x = be.Allocate(input.Shape, be.ComputeType);
        be.CopyFromHost(input.Data, x);
        using var targets = be.Allocate([labels.Length, classes], DType.F32);
        be.CopyFromHost(Targets.Smoothed(labels, classes, 0.1f), targets);
        using var dlogits = be.Allocate([labels.Length, classes], be.ComputeType);
        tm.ZeroGrad();
        var logits = tm.Forward(x, rng: null);
        float loss = be.SoftmaxCrossEntropy(logits, targets, dlogits);
        tm.Backward(dlogits);
        var grads = tm.Grads.ToHost();
        using var opt = new AdamW(tm.Parameters, tm.Grads, excludeFromDecay: false) { WeightDecay = 0.05f };
        opt.LoadWeights(ckpt.Weights, dir);
        opt.Update(1e-3f);
        return (loss, grads, opt.Weights.ToHost());
    }

    private static double RelAll(Dictionary<string, HostArray> got, IReadOnlyDictionary<string, HostArray> want, out double maxAbs)
    {
        double num = 0, den = 0;
        maxAbs = 0;
        foreach (var (name, w) in want)
        {
            var g = got[name].Data;
            for (int i = 0; i < w.Data.Length; i++)
            {
                double e = (double)g[i] - w.Data[i];
                if (double.IsNaN(e)) return double.NaN;
                num += e * e; den += (double)w.Data[i] * w.Data[i];
                maxAbs = Math.Max(maxAbs, Math.Abs(e));
            }
        }
        return Math.Sqrt(num / Math.Max(den, 1e-30));
    }

    /// <summary>Gradients and one AdamW step on the GPU against PyTorch's and against the CPU backend's.</summary>
    public static List<CudaSelfTest.Result> GradientParity(string dir)
    {
        var results = new List<CudaSelfTest.Result>();
        string name = Path.GetFileName(dir.TrimEnd('/'));
        if (!File.Exists(Path.Combine(dir, "grads.safetensors")))
        {
            results.Add(new CudaSelfTest.Result($"gradients {name}", double.NaN, double.NaN, 0, $"missing {dir}/grads.safetensors"));
            return results;
        }
        float refLoss = Npy.Read(Path.Combine(dir, "loss.npy")).Data[0];
        var refGrads = SafeTensors.Read(Path.Combine(dir, "grads.safetensors"));
        var refAfter = SafeTensors.Read(Path.Combine(dir, "model_after_adamw_step.safetensors"));
        var cpu = Step(dir, CpuBackend.Instance);
        foreach (var dt in new[] { DType.F32, DType.BF16 })
        {
            using var gpu = new CudaBackend(dt);
            var g = Step(dir, gpu);
            double tol = dt == DType.F32 ? CudaSelfTest.F32Tolerance : 3e-2;
            results.Add(new CudaSelfTest.Result($"{dt} {name} loss vs PyTorch", Math.Abs(g.Loss - refLoss) / Math.Abs(refLoss), Math.Abs(g.Loss - refLoss),
                dt == DType.F32 ? CudaSelfTest.F32Tolerance : 1e-2));
            double r1 = RelAll(g.Grads, refGrads, out var a1);
            results.Add(new CudaSelfTest.Result($"{dt} {name} gradients vs PyTorch", r1, a1, tol));
            double r2 = RelAll(g.Grads, cpu.Grads, out var a2);
            results.Add(new CudaSelfTest.Result($"{dt} {name} gradients vs CPU", r2, a2, tol));
            double r3 = RelAll(g.After, refAfter, out var a3);
            if (dt == DType.F32)
                results.Add(new CudaSelfTest.Result($"{dt} {name} weights after AdamW vs PyTorch", r3, a3, 1e-5));
            else
                // Adam's first step moves every weight by about lr·sign(g): bf16 gradients (3e-2 above) can flip the sign
                // of near-zero entries, so the bound that holds is |Δ| ≤ 2·lr per weight (reported as max |Δ| / 2·lr).
                results.Add(new CudaSelfTest.Result($"{dt} {name} weights after AdamW vs PyTorch (max |Δ| / 2·lr)", a3 / 2e-3, a3, 1.0001,
                    $"rel {r3:E2}"));
        }
        return results;
    }

    /// <summary>Same seed, same GPU: a few steps of a small ViT with drop path, run twice, give identical weights.</summary>
    public static CudaSelfTest.Result Determinism(DType dt)
    {
        var a = SeededSteps(dt, replay: false, out _);
        var b2 = SeededSteps(dt, replay: false, out _);
        int diff = 0;
        for (int i = 0; i < a.Length; i++) if (a[i] != b2[i]) diff++;
        return new CudaSelfTest.Result($"{dt} determinism: 5 seeded steps twice, differing bytes", diff, diff, 0);
    }

    /// <summary>The same seeded steps replayed as a recorded CUDA graph (from the second step on) give the eager
    /// steps' weights bit for bit: same kernels, same order, the drop-path masks drawn as the eager pass draws them.</summary>
    public static CudaSelfTest.Result GraphReplay(DType dt)
    {
        var eager = SeededSteps(dt, replay: false, out _);
        var replayed = SeededSteps(dt, replay: true, out bool didReplay);
        int diff = 0;
        for (int i = 0; i < eager.Length; i++) if (eager[i] != replayed[i]) diff++;
        if (!didReplay) return new CudaSelfTest.Result($"{dt} graph replay", double.NaN, double.NaN, 0, "the steps did not replay");
        return new CudaSelfTest.Result($"{dt} graph replay: 5 seeded steps, replayed vs eager, differing bytes", diff, diff, 0);
    }

    /// <summary>The one-sweep AdamW over decay runs gives the per-run steps' numbers bit for bit (three steps).</summary>
    public static CudaSelfTest.Result AdamWRuns()
    {
        using var gpu = new CudaBackend(DType.F32);
        var rng = new Random(9);
        int n = 1000;
        // With gaps, as a parameter set's alignment padding leaves them (zero everywhere).
        (long, int, bool)[] runs = [(0, 300, true), (304, 77, false), (384, 600, true), (984, 16, false)];
        float[] R(float scale)
        {
            var a = Rand(rng, n, scale, DType.F32);
            foreach (int gap in new[] { 300, 301, 302, 303, 381, 382, 383 }) a[gap] = 0;
            return a;
        }
        float[] p0 = R(1), m0 = R(0.1f), v0 = R(0.1f).Select(Math.Abs).ToArray();
        var grads = Enumerable.Range(0, 3).Select(_ => R(1)).ToArray();
        float[] Run(bool fused)
        {
            using var p = gpu.Allocate([n], DType.F32);
            using var g = gpu.Allocate([n], DType.F32);
            using var m = gpu.Allocate([n], DType.F32);
            using var v = gpu.Allocate([n], DType.F32);
            gpu.CopyFromHost(p0, p); gpu.CopyFromHost(m0, m); gpu.CopyFromHost(v0, v);
            for (int step = 1; step <= 3; step++)
            {
                gpu.CopyFromHost(grads[step - 1], g);
                var a = new AdamWArgs(1e-2f, 0.9f, 0.999f, 1e-8f, 0.05f, step);
                if (fused) gpu.AdamWStepRuns(p, g, m, v, runs, a);
                else
                    foreach (var (off, len, decay) in runs)
                        gpu.AdamWStep(p.View([len], off), g.View([len], off), m.View([len], off), v.View([len], off),
                            a with { WeightDecay = decay ? a.WeightDecay : 0f });
            }
            var host = new float[n];
            gpu.CopyToHost(p, host);
            return host;
        }
        var fusedW = Run(true);
        var perRun = Run(false);
        int diff = 0;
        for (int i = 0; i < n; i++) if (BitConverter.SingleToInt32Bits(fusedW[i]) != BitConverter.SingleToInt32Bits(perRun[i])) diff++;
        return new CudaSelfTest.Result("AdamW one sweep over decay runs vs per run, 3 steps, differing weights", diff, diff, 0);
    }

    private static byte[] SeededSteps(DType dt, bool replay, out bool replayed, VitConfig? config = null)
    {
        {
            using var gpu = new CudaBackend(dt);
            var cfg = config ?? new VitConfig { ImageSize = 32, PatchSize = 4, EmbedDim = 64, Depth = 2, NumHeads = 2, NumClasses = 10, MlpDim = 128 };
            using var model = VisionModel.Create(cfg, gpu);
            var init = Initializer.Init(cfg, 7);
            model.Load(init, "init");
            using var tm = TrainableModel.Create(model);
            tm.Regularization = new Regularization(0, 0.1f);
            using var opt = new AdamW(model.Parameters, tm.Grads);
            opt.LoadWeights(init, "init");
            var rng = new Random(3);
            int b = 16;
            using var x = gpu.Allocate([b, 3, 32, 32], gpu.ComputeType);
            using var t = gpu.Allocate([b, 10], DType.F32);
            using var dl = gpu.Allocate([b, 10], gpu.ComputeType);
            using var stats = gpu.Allocate([4], DType.F32);
            gpu.Zero(stats);
            for (int s = 0; s < 5; s++)
            {
                gpu.CopyFromHost(Rand(rng, x.Length, 1, DType.F32), x);
                var labels = Enumerable.Range(0, b).Select(_ => rng.Next(10)).ToArray();
                gpu.CopyFromHost(Targets.Smoothed(labels, 10, 0.1f), t);
                tm.ZeroGrad();
                tm.TrainStep(new TrainableModel.StepIo(x, t, null, dl, stats, 1f), new Random(s),
                    () => gpu.ClipGradNorm(tm.Grads.Buffer, 1f, stats), replay);
                opt.Update(1e-3f);
            }
            replayed = tm.Replaying;
            var w = opt.Weights.ToHost();
            return w.OrderBy(kv => kv.Key, StringComparer.Ordinal).SelectMany(kv => kv.Value.Data.SelectMany(BitConverter.GetBytes)).ToArray();
        }
    }

    /// <summary>A distillation-token student (ViT 32², patch 4, width 64, depth 2) and a teacher (width 48) written to a
    /// temporary file; the data of every step is seeded.</summary>
    private static (VitConfig Student, string Teacher) DistillationSetup()
    {
        var teacher = new VitConfig { ImageSize = 32, PatchSize = 4, EmbedDim = 48, Depth = 2, NumHeads = 2, NumClasses = 10, MlpDim = 96 };
        var path = Path.Combine(Path.GetTempPath(), $"vitsharp-selftest-teacher-{Environment.ProcessId}.safetensors");
        var w = Initializer.Init(teacher, 5);
        // A teacher with an opinion: a head of std 0.5 instead of timm's 0.02 makes its logits (and so the hard targets) vary.
        var rng = new Random(6);
        foreach (ref var v in w["head.weight"].Data.AsSpan()) v = (float)(rng.NextDouble() - 0.5);
        Checkpoint.Save(path, teacher, w);
        return (new VitConfig { ImageSize = 32, PatchSize = 4, EmbedDim = 64, Depth = 2, NumHeads = 2, NumClasses = 10, MlpDim = 128, DistToken = true }, path);
    }

    /// <summary><paramref name="steps"/> seeded distillation steps (teacher forward, DeiT's loss on both heads, backward,
    /// clipping, AdamW) on <paramref name="be"/>: the weights after them, the first step's loss and gradients.</summary>
    private static (Dictionary<string, HostArray> Weights, float Loss, Dictionary<string, HostArray> Grads, bool Replayed) DistilledSteps(
        ITrainingBackend be, DistillationKind kind, int steps, bool replay, DType data)
    {
        var (cfg, teacherPath) = DistillationSetup();
        try
        {
            using var model = VisionModel.Create(cfg, be);
            var init = Initializer.Init(cfg, 7);
            model.Load(init, "init");
            using var tm = TrainableModel.Create(model);
            using var kd = Distillation.Open(new DistillationConfig { Teacher = teacherPath, Type = kind == DistillationKind.Hard ? "hard" : "soft", Tau = 2f },
                cfg, Enumerable.Range(0, 10).Select(i => $"c{i}").ToList(), [0.5f], [0.5f], be);
            tm.SeparateHeads = kd.SeparateHeads;
            tm.Loss = kd.Loss;
            using var opt = new AdamW(model.Parameters, tm.Grads);
            opt.LoadWeights(init, "init");
            var rng = new Random(3);
            int b = 16;
            using var x = be.Allocate([b, 3, 32, 32], be.ComputeType);
            using var t = be.Allocate([b, 10], DType.F32);
            using var labels = be.Allocate([b], DType.F32);
            using var dl = be.Allocate([b, 10], be.ComputeType);
            using var stats = be.Allocate([4], DType.F32);
            float loss = float.NaN;
            Dictionary<string, HostArray>? grads = null;
            for (int s = 0; s < steps; s++)
            {
                be.CopyFromHost(Rand(rng, x.Length, 1, data), x);
                var lab = Enumerable.Range(0, b).Select(_ => rng.Next(10)).ToArray();
                be.CopyFromHost(Targets.Smoothed(lab, 10, 0.1f), t);
                be.CopyFromHost(lab.Select(v => (float)v).ToArray(), labels);
                be.Zero(stats);
                tm.ZeroGrad();
                tm.TrainStep(new TrainableModel.StepIo(x, t, labels, dl, stats, 1f), null, () => be.ClipGradNorm(tm.Grads.Buffer, 1e9f, stats), replay);
                if (s == 0)
                {
                    var host = new float[4];
                    be.CopyToHost(stats, host);
                    loss = host[0];
                    grads = tm.Grads.ToHost();
                }
                opt.Update(1e-3f);
            }
            return (opt.Weights.ToHost(), loss, grads!, tm.Replaying);
        }
        finally { File.Delete(teacherPath); }
    }

    /// <summary>Distillation on the GPU: one step's DeiT loss and gradients (hard and soft) against the CPU backend's, and
    /// five steps replayed as a recorded CUDA graph (teacher forward included) against the eager steps, bit for bit.</summary>
    public static List<CudaSelfTest.Result> DistillationChecks(DType dt)
    {
        var results = new List<CudaSelfTest.Result>();
        foreach (var kind in new[] { DistillationKind.Hard, DistillationKind.Soft })
        {
            // The hard targets are the teacher's arg-max: in bf16 a near tie may pick another class than the CPU's fp32
            // teacher, so the hard loss is compared in F32 (the op itself is compared on identical inputs above).
            if (dt == DType.F32 || kind == DistillationKind.Soft)
            {
                var cpu = DistilledSteps(CpuBackend.Instance, kind, 1, replay: false, dt);
                using var gpu = new CudaBackend(dt);
                var g = DistilledSteps(gpu, kind, 1, replay: false, dt);
                double tol = dt == DType.F32 ? CudaSelfTest.F32Tolerance : 3e-2;
                results.Add(new CudaSelfTest.Result($"{dt} distillation {kind}: loss vs CPU", Math.Abs(g.Loss - cpu.Loss) / Math.Abs(cpu.Loss),
                    Math.Abs(g.Loss - cpu.Loss), dt == DType.F32 ? CudaSelfTest.F32Tolerance : 1e-2));
                double r = RelAll(g.Grads, cpu.Grads, out var a);
                results.Add(new CudaSelfTest.Result($"{dt} distillation {kind}: gradients vs CPU", r, a, tol));
            }
            byte[] Bytes(Dictionary<string, HostArray> w) =>
                w.OrderBy(kv => kv.Key, StringComparer.Ordinal).SelectMany(kv => kv.Value.Data.SelectMany(BitConverter.GetBytes)).ToArray();
            byte[] eager, replayed;
            bool didReplay;
            using (var gpu = new CudaBackend(dt)) eager = Bytes(DistilledSteps(gpu, kind, 5, replay: false, dt).Weights);
            using (var gpu = new CudaBackend(dt))
            {
                var rp = DistilledSteps(gpu, kind, 5, replay: true, dt);
                replayed = Bytes(rp.Weights);
                didReplay = rp.Replayed;
            }
            int diff = 0;
            for (int i = 0; i < eager.Length; i++) if (eager[i] != replayed[i]) diff++;
            results.Add(didReplay
                ? new CudaSelfTest.Result($"{dt} distillation {kind}: 5 steps replayed vs eager, differing bytes", diff, diff, 0)
                : new CudaSelfTest.Result($"{dt} distillation {kind} graph replay", double.NaN, double.NaN, 0, "the steps did not replay"));
        }
        return results;
    }

    /// <summary>The CCT-shaped test model: ViT 32², CCT's two-layer tokenizer (3 → 32 → 64 channels, 8×8 tokens), width 64, depth 2.</summary>
    public static VitConfig ConvTokenizerModel => new()
    {
        ImageSize = 32, PatchSize = 4, EmbedDim = 64, Depth = 2, NumHeads = 2, NumClasses = 10, MlpDim = 128, Pool = Pooling.Avg, FcNorm = true,
        ConvTokenizer = new ConvTokenizerConfig { Layers = 2, Channels = 32 },
    };

    /// <summary><see cref="ConvTokenizerModel"/> with CCT's sequence pooling (global_pool seq, no class token, no fc_norm).</summary>
    public static VitConfig SeqPoolModel => ConvTokenizerModel with { Pool = Pooling.Seq, FcNorm = false, ClassToken = false };

    /// <summary>Logits of an inference forward, then one training step's loss and gradients (fp32), of
    /// <paramref name="cfg"/> on <paramref name="be"/>; seeded weights and data (rounded to <paramref name="data"/>).</summary>
    private static (float[] Logits, float Loss, Dictionary<string, HostArray> Grads) ModelStep(ITrainingBackend be, DType data, VitConfig cfg)
    {
        var init = Initializer.Init(cfg, 7);
        var rng = new Random(11);
        // A head with an opinion (timm's 0.02 makes every logit ~0, so a comparison would mean little).
        foreach (ref var v in init["head.weight"].Data.AsSpan()) v = (float)(rng.NextDouble() - 0.5);
        using var model = VisionModel.Create(cfg, be);
        model.Load(init, "init");
        int b = 8;
        var images = new HostArray([b, 3, 32, 32], Rand(rng, b * 3 * 32 * 32, 1, data));
        var labels = Enumerable.Range(0, b).Select(_ => rng.Next(10)).ToArray();
        var logits = model.Run(images).Data;
        using var tm = TrainableModel.Create(model);
        using var x = be.Allocate(images.Shape, be.ComputeType);
        be.CopyFromHost(images.Data, x);
        using var targets = be.Allocate([b, 10], DType.F32);
        be.CopyFromHost(Targets.Smoothed(labels, 10, 0.1f), targets);
        using var dlogits = be.Allocate([b, 10], be.ComputeType);
        tm.ZeroGrad();
        var trainLogits = tm.Forward(x, rng: null);
        float loss = be.SoftmaxCrossEntropy(trainLogits, targets, dlogits);
        tm.Backward(dlogits);
        return (logits, loss, tm.Grads.ToHost());
    }

    /// <summary>
    /// CCT's convolutional tokenizer on the GPU, whole model (<see cref="ConvTokenizerModel"/>): see <see cref="ModelChecks"/>;
    /// each convolution weight's gradient is also compared on its own.
    /// </summary>
    public static List<CudaSelfTest.Result> ConvTokenizerChecks(DType dt) =>
        ModelChecks(dt, "conv tokenizer ViT", ConvTokenizerModel, [Nn.ConvTokenizer.WeightName(0), Nn.ConvTokenizer.WeightName(1)]);

    /// <summary>CCT's sequence pooling on the GPU, whole model (<see cref="SeqPoolModel"/>): see <see cref="ModelChecks"/>;
    /// the score Linear's gradient is also compared on its own.</summary>
    public static List<CudaSelfTest.Result> SeqPoolChecks(DType dt) =>
        ModelChecks(dt, "seq-pool ViT", SeqPoolModel, [Nn.SeqPool.Prefix + ".weight"]);

    /// <summary>
    /// A whole model on the GPU against the CPU backend: inference logits, the training loss and every parameter's
    /// gradient (F32: logits and loss ≤ 1e-5, gradients ≤ 1e-4, the room a max-pool window whose two largest values differ
    /// by float rounding needs; BF16 3e-2), the gradients of <paramref name="own"/> each on its own, and five seeded steps
    /// with drop path replayed as a recorded CUDA graph against the eager steps, bit for bit.
    /// </summary>
    private static List<CudaSelfTest.Result> ModelChecks(DType dt, string label, VitConfig cfg, string[] own)
    {
        var results = new List<CudaSelfTest.Result>();
        var cpu = ModelStep(CpuBackend.Instance, dt, cfg);
        using (var gpu = new CudaBackend(dt))
        {
            var g = ModelStep(gpu, dt, cfg);
            bool f32 = dt == DType.F32;
            var (rl, al) = CudaSelfTest.Compare(g.Logits, cpu.Logits);
            results.Add(new CudaSelfTest.Result($"{dt} {label}: logits vs CPU", rl, al, f32 ? CudaSelfTest.F32Tolerance : CudaSelfTest.Bf16ModelTolerance));
            results.Add(new CudaSelfTest.Result($"{dt} {label}: loss vs CPU", Math.Abs(g.Loss - cpu.Loss) / Math.Abs(cpu.Loss),
                Math.Abs(g.Loss - cpu.Loss), f32 ? CudaSelfTest.F32Tolerance : 1e-2));
            double r = RelAll(g.Grads, cpu.Grads, out var a);
            results.Add(new CudaSelfTest.Result($"{dt} {label}: gradients vs CPU", r, a, f32 ? 1e-4 : 3e-2));
            foreach (var name in own)
            {
                var one = new Dictionary<string, HostArray> { [name] = cpu.Grads[name] };
                double rw = RelAll(g.Grads, one, out var aw);
                results.Add(new CudaSelfTest.Result($"{dt} {label}: {name} gradient vs CPU", rw, aw, f32 ? 1e-4 : 3e-2));
            }
        }
        var eager = SeededSteps(dt, replay: false, out _, cfg);
        var replayed = SeededSteps(dt, replay: true, out bool didReplay, cfg);
        int diff = 0;
        for (int i = 0; i < eager.Length; i++) if (eager[i] != replayed[i]) diff++;
        results.Add(didReplay
            ? new CudaSelfTest.Result($"{dt} {label}: 5 steps replayed vs eager, differing bytes", diff, diff, 0)
            : new CudaSelfTest.Result($"{dt} {label} graph replay", double.NaN, double.NaN, 0, "the steps did not replay"));
        return results;
    }

    public static bool RunAll(IEnumerable<string> gradientRefs, TextWriter log)
    {
        if (!CudaBackend.IsAvailable(out var why)) { log.WriteLine("CUDA unavailable: " + why); return false; }
        var all = new List<CudaSelfTest.Result>();
        void Add(IEnumerable<CudaSelfTest.Result> rs) { foreach (var r in rs) { log.WriteLine(r); all.Add(r); } }
        foreach (var dt in new[] { DType.F32, DType.BF16 }) Add(OpParity(dt));
        foreach (var dir in gradientRefs) Add(GradientParity(dir));
        foreach (var dt in new[] { DType.F32, DType.BF16 }) Add([Determinism(dt), GraphReplay(dt)]);
        foreach (var dt in new[] { DType.F32, DType.BF16 }) Add(DistillationChecks(dt));
        foreach (var dt in new[] { DType.F32, DType.BF16 }) Add(ConvTokenizerChecks(dt));
        foreach (var dt in new[] { DType.F32, DType.BF16 }) Add(SeqPoolChecks(dt));
        Add([AdamWRuns()]);
        int failed = all.Count(r => !r.Pass);
        log.WriteLine($"training: {all.Count - failed}/{all.Count} passed");
        return failed == 0;
    }
}
