using System.Diagnostics;
using VitSharp.Backends;
using VitSharp.Backends.Cpu;
using VitSharp.Checkpoints;
using VitSharp.Data.Datasets;
using VitSharp.Models;
using VitSharp.Tensors;

namespace VitSharp.Training;

/// <summary>What the trainer reports: a logged step, an evaluation, a checkpoint.</summary>
public sealed record TrainEvent(string Kind, long Step, long TotalSteps, int Epoch, float Loss = float.NaN, double Accuracy = double.NaN,
    float Lr = float.NaN, double ImagesPerSecond = double.NaN, float GradNorm = float.NaN, EvalResult? Eval = null, string? Path = null);

public sealed record TrainResult(long Steps, bool Interrupted, EvalResult? LastEval, IReadOnlyList<float> StepLosses);

/// <summary>
/// The training loop: micro-batches from a seeded loader, optional mixup/cutmix, forward, softmax cross-entropy with label
/// smoothing, backward, gradient accumulation, global-norm clipping, a scheduled optimizer step, optional EMA; logs to
/// output/log.jsonl, evaluates each epoch, checkpoints atomically, and resumes exactly from output/checkpoint.safetensors.
/// </summary>
public sealed class Trainer : IDisposable
{
    public const string CheckpointFile = "checkpoint.safetensors", ModelFile = "model.safetensors", LogFile = "log.jsonl";

    private readonly TrainConfig _cfg;
    private readonly IImageDataset _train;
    private readonly IImageDataset? _val;
    private readonly VisionModel _model;
    private readonly TrainableModel _tm;
    private readonly Optimizer _opt;
    private readonly Ema? _ema;
    private readonly DataLoader _loader;
    private readonly Augmentation _aug;
    private readonly LrSchedule _schedule;
    private readonly Mixup? _mixup;

    public Trainer(TrainConfig config, IImageDataset train, IImageDataset? val, ITrainingBackend? backend = null)
    {
        _cfg = config;
        _train = train;
        _val = val;
        var be = backend ?? CpuBackend.Instance;
        int classes = train.Classes.Count;
        ModelConfig mc;
        Dictionary<string, HostArray> init;
        if (config.InitCheckpoint is { } ck)
        {
            int? size = config.Model["img_size"] is { } s ? (int)s : null;
            int? heads = config.Model["num_heads"] is { } h ? (int)h : null;
            (mc, init) = FineTune.Prepare(ck, size, classes, heads);
        }
        else
        {
            mc = config.BuildModelConfig(classes);
            init = Initializer.Init(mc, config.Seed);
        }
        _model = VisionModel.Create(mc, be);
        _model.Load(init, config.InitCheckpoint ?? "initialisation");
        _tm = TrainableModel.Create(_model);
        _tm.Regularization = new Regularization(config.DropRate, config.DropPathRate);
        var o = config.Optimizer;
        _opt = o.Name.ToLowerInvariant() switch
        {
            "adamw" => new AdamW(_model.Parameters, _tm.Grads, o.ExcludeFromDecay) { Beta1 = o.Beta1, Beta2 = o.Beta2, Eps = o.Eps, WeightDecay = o.WeightDecay },
            "sgd" => new Sgd(_model.Parameters, _tm.Grads, o.ExcludeFromDecay) { Momentum = o.Momentum, WeightDecay = o.WeightDecay, Nesterov = o.Nesterov },
            _ => throw new VitSharpException($"optimizer.name must be adamw or sgd, not '{o.Name}'"),
        };
        if (config.EmaDecay > 0) _ema = new Ema(_model.Parameters, config.EmaDecay);
        var d = config.Data;
        _aug = new Augmentation
        {
            ImageSize = mc.ImageSize, Channels = mc.InChannels, Mean = d.Mean, Std = d.Std, CropPadding = d.CropPadding, HorizontalFlip = d.HorizontalFlip,
        };
        if (d.Recipe is { } recipe)
        {
            Data.Transforms.PreprocessRecipe r;
            try { r = Data.Transforms.PreprocessRecipe.Named(recipe, mc.ImageSize); }
            catch (ArgumentException e) { throw new VitSharpException("data.recipe: " + e.Message, e); }
            _aug = _aug with { Recipe = r, Mean = r.Mean, Std = r.Std };
        }
        if (config.AccumulationSteps < 1 || config.BatchSize < 1) throw new VitSharpException("batch_size and accumulation_steps must be at least 1");
        _loader = new DataLoader(train, config.BatchSize, _aug, shuffle: true, dropLast: true, config.Seed, d.Workers);
        StepsPerEpoch = _loader.BatchesPerEpoch / config.AccumulationSteps;
        if (StepsPerEpoch == 0) throw new VitSharpException($"{train.Count} training images do not fill one step of {config.BatchSize}×{config.AccumulationSteps}");
        TotalSteps = (long)StepsPerEpoch * config.Epochs;
        if (config.MaxSteps > 0) TotalSteps = Math.Min(TotalSteps, config.MaxSteps);
        long warmup = config.Schedule.WarmupSteps > 0 ? config.Schedule.WarmupSteps : (long)Math.Round(config.Schedule.WarmupEpochs * StepsPerEpoch);
        _schedule = new LrSchedule(o.Lr, TotalSteps, warmup, config.Schedule.Decay, config.Schedule.MinLr);
        if (config.Mixup > 0 || config.Cutmix > 0) _mixup = new Mixup(config.Mixup, config.Cutmix, config.MixupProb);
    }

    public VisionModel Model => _model;
    public int StepsPerEpoch { get; }
    public long TotalSteps { get; }
    public Action<TrainEvent>? OnEvent { get; set; }
    /// <summary>Stops (as an interruption would) right after this step's checkpoint; for resume tests. 0: never.</summary>
    public long InterruptAfterStep { get; set; }

    private string Out(string file) => Path.Combine(_cfg.Output, file);

    public TrainResult Run(bool resume = true)
    {
        Directory.CreateDirectory(_cfg.Output);
        var state = new TrainState(0, 0, 0);
        if (resume && File.Exists(Out(CheckpointFile))) state = Restore();
        TrimLog(state.Step);
        using var log = new StreamWriter(Out(LogFile), append: true);
        var losses = new List<float>();
        EvalResult? lastEval = null;
        var cfg = _cfg;
        var be = _tm.Be;
        var mc = _model.Config;
        int accum = cfg.AccumulationSteps, microPerEpoch = StepsPerEpoch * accum;
        long step = state.Step, lastSaved = state.Step;
        var sw = Stopwatch.StartNew();
        double windowLoss = 0; long windowCorrect = 0, windowImages = 0; int windowSteps = 0;
        float stepLoss = 0;
        _tm.ZeroGrad();

        for (int epoch = state.Epoch; step < TotalSteps; epoch++)
        {
            int bi = epoch == state.Epoch ? state.Batch : 0;
            foreach (var batch in _loader.Epoch(epoch, bi))
            {
                if (bi >= microPerEpoch || step >= TotalSteps) break;
                long micro = (long)epoch * microPerEpoch + bi;
                float[] targets;
                if (_mixup is not null)
                    targets = _mixup.Apply(batch.Images, batch.Count, mc.InChannels, mc.ImageSize, mc.ImageSize, batch.Labels,
                        mc.NumClasses, cfg.LabelSmoothing, new Random(Seed(micro, 1)));
                else targets = Targets.Smoothed(batch.Labels, mc.NumClasses, cfg.LabelSmoothing);
                using var x = Tensor.FromArray(batch.Images, batch.Count, mc.InChannels, mc.ImageSize, mc.ImageSize);
                using var t = Tensor.FromArray(targets, batch.Count, mc.NumClasses);
                using var dl = Tensor.Host(batch.Count, mc.NumClasses);
                var logits = _tm.Forward(x, new Random(Seed(micro, 2)));
                float loss = be.SoftmaxCrossEntropy(logits, t, dl, 1f / accum);
                if (!float.IsFinite(loss)) throw Diverged("loss", loss, step, epoch, lastSaved);
                windowCorrect += Correct(logits, batch.Labels);
                windowImages += batch.Count;
                stepLoss += loss / accum;
                _tm.Backward(dl);
                bi++;
                if (bi % accum != 0) continue;

                float norm = GradientClipping.ClipGlobalNorm(be, _tm.Grads.Buffer, cfg.ClipGradNorm);
                if (!float.IsFinite(norm)) throw Diverged("gradient norm", norm, step, epoch, lastSaved);
                float lr = _schedule.At(step);
                _opt.Update(lr);
                _ema?.Update();
                _tm.ZeroGrad();
                step++;
                losses.Add(stepLoss);
                windowLoss += stepLoss; windowSteps++; stepLoss = 0;
                if (step % Math.Max(1, cfg.LogEverySteps) == 0 || step == TotalSteps)
                {
                    double secs = sw.Elapsed.TotalSeconds;
                    var e = new TrainEvent("step", step, TotalSteps, epoch, (float)(windowLoss / windowSteps), (double)windowCorrect / windowImages,
                        lr, windowImages / Math.Max(secs, 1e-9), norm);
                    Log(log, e);
                    windowLoss = 0; windowCorrect = 0; windowImages = 0; windowSteps = 0;
                    sw.Restart();
                }
                bool endOfEpoch = bi == microPerEpoch;
                if (!endOfEpoch && cfg.CheckpointEverySteps > 0 && step % cfg.CheckpointEverySteps == 0 && step < TotalSteps)
                {
                    Save(new TrainState(step, epoch, bi), log, lastSaved);
                    lastSaved = step;
                }
                if (InterruptAfterStep > 0 && step == InterruptAfterStep && lastSaved == step)
                    return new TrainResult(step, true, lastEval, losses);
            }
            // End of an epoch (or of the run): evaluate, then checkpoint at the start of the next epoch. The images/s clock
            // pauses meanwhile, so the next logged rate covers training only.
            sw.Stop();
            if (_val is not null)
            {
                lastEval = Evaluate();
                Log(log, new TrainEvent("eval", step, TotalSteps, epoch, (float)lastEval.Loss, lastEval.Top1, Eval: lastEval));
                if (_ema is not null)
                {
                    var ema = EvaluateEma();
                    Log(log, new TrainEvent("eval_ema", step, TotalSteps, epoch, (float)ema.Loss, ema.Top1, Eval: ema));
                }
            }
            var next = bi >= microPerEpoch ? new TrainState(step, epoch + 1, 0) : new TrainState(step, epoch, bi);
            Save(next, log, lastSaved);
            lastSaved = step;
            if (InterruptAfterStep > 0 && step == InterruptAfterStep) return new TrainResult(step, true, lastEval, losses);
            sw.Start();
        }
        return new TrainResult(step, false, lastEval, losses);
    }

    public EvalResult Evaluate()
    {
        if (_val is null) throw new InvalidOperationException("no validation set");
        var loader = new DataLoader(_val, _cfg.BatchSize, _aug.ForEvaluation(), shuffle: false, dropLast: false, _cfg.Seed, _cfg.Data.Workers);
        return Evaluator.Evaluate(_model, loader);
    }

    /// <summary>Evaluates the EMA weights by swapping them in and the training weights back (exact float copies).</summary>
    public EvalResult EvaluateEma()
    {
        if (_ema is null) throw new InvalidOperationException("the run keeps no EMA (ema_decay is 0)");
        var current = _model.Parameters.ToHost();
        _model.Parameters.Load(_ema.Weights.ToHost(), "ema");
        try { return Evaluate(); }
        finally { _model.Parameters.Load(current, "training weights"); }
    }

    private int Seed(long micro, int stream) => (int)(DataLoader.Mix((ulong)_cfg.Seed, (ulong)micro, (ulong)stream) & 0x7fffffff);

    private static int Correct(Tensor logits, int[] labels)
    {
        var s = logits.Span;
        int k = logits.Dim(1), n = 0;
        for (int b = 0; b < labels.Length; b++)
        {
            var row = s.Slice(b * k, k);
            int arg = 0;
            for (int j = 1; j < k; j++) if (row[j] > row[arg]) arg = j;
            if (arg == labels[b]) n++;
        }
        return n;
    }

    private TrainingDivergedException Diverged(string what, float value, long step, int epoch, long lastSaved) =>
        new($"{what} is {value} at step {step + 1} (epoch {epoch}): training stopped. " +
            (lastSaved > 0 || File.Exists(Out(CheckpointFile))
                ? $"The last good checkpoint, {Out(CheckpointFile)} (step {lastSaved}), is kept. "
                : "No checkpoint was written yet. ") +
            "Lower the learning rate, add warmup, or enable clip_grad_norm.");

    private void Save(TrainState s, StreamWriter log, long lastSaved)
    {
        var weights = _model.Parameters.ToHost();
        // Never replace a good checkpoint with one whose weights have already blown up.
        foreach (var (name, w) in weights)
            if (!Array.TrueForAll(w.Data, float.IsFinite))
                throw Diverged($"weight '{name}'", w.Data.First(v => !float.IsFinite(v)), s.Step - 1, s.Epoch, lastSaved);
        TrainCheckpoint.Save(Out(CheckpointFile), _model.Config, s, _cfg.ToJson(), weights, _opt.State(), _ema?.Weights.ToHost(), _train.Classes);
        TrainCheckpoint.ExportModel(Out(ModelFile), _model.Config, weights, _train.Classes, _aug.Mean, _aug.Std, _cfg.Data.Recipe);
        if (_ema is not null) TrainCheckpoint.ExportModel(Out("model_ema.safetensors"), _model.Config, _ema.Weights.ToHost(), _train.Classes, _aug.Mean, _aug.Std, _cfg.Data.Recipe);
        Log(log, new TrainEvent("checkpoint", s.Step, TotalSteps, s.Epoch, Path: Out(CheckpointFile)));
    }

    private TrainState Restore()
    {
        var path = Out(CheckpointFile);
        var ck = TrainCheckpoint.Load(path);
        if (ck.ModelConfigJson != _model.Config.ToJson().ToJsonString())
            throw new CheckpointException(path, "was written for another model configuration; use another --output to start afresh");
        _model.Load(ck.Weights, path);
        _opt.LoadState(ck.Optimizer, ck.State.Step, path);
        if (_ema is not null)
            _ema.Weights.Load(ck.Ema ?? throw new CheckpointException(path, "has no EMA weights but the run uses ema_decay"), path);
        return ck.State;
    }

    private void TrimLog(long step) => TrainLog.Trim(Out(LogFile), step);

    private void Log(StreamWriter log, TrainEvent e)
    {
        TrainLog.Write(log, e);
        OnEvent?.Invoke(e);
    }

    public void Dispose()
    {
        _ema?.Dispose();
        _opt.Dispose();
        _tm.Dispose();
        _model.Dispose();
    }
}
