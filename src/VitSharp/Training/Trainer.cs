using System.Diagnostics;
using VitSharp.Backends;
using VitSharp.Backends.Cpu;
using VitSharp.Checkpoints;
using VitSharp.Data.Datasets;
using VitSharp.Models;
using VitSharp.Tensors;
using VitSharp.Training.Distributed;

namespace VitSharp.Training;

/// <summary>What the trainer reports: a logged step, an evaluation, a checkpoint.</summary>
public sealed record TrainEvent(string Kind, long Step, long TotalSteps, int Epoch, float Loss = float.NaN, double Accuracy = double.NaN,
    float Lr = float.NaN, double ImagesPerSecond = double.NaN, float GradNorm = float.NaN, EvalResult? Eval = null, string? Path = null)
{
    /// <summary>Seconds since this process's Trainer started running (time-to-accuracy curves).</summary>
    public double WallSeconds { get; init; } = double.NaN;
}

/// <summary>What a training run did: steps taken, whether it was interrupted, the last evaluation and the loss per step.</summary>
public sealed record TrainResult(long Steps, bool Interrupted, EvalResult? LastEval, IReadOnlyList<float> StepLosses);

/// <summary>
/// The training loop: micro-batches from a seeded loader, optional mixup/cutmix, forward, softmax cross-entropy with label
/// smoothing, backward, gradient accumulation, global-norm clipping, a scheduled optimizer step, optional EMA; logs to
/// output/log.jsonl, evaluates each epoch, checkpoints atomically, and resumes exactly from output/checkpoint.safetensors.
/// Data parallel with a communicator of N ranks (one Trainer per rank): <c>batch_size</c> is the global batch, each rank
/// reads its disjoint batch_size/N slice of every global batch, gradients are averaged over the ranks in buckets before
/// clipping, every rank takes the same optimizer step (or its ZeRO-1 shard of it), and rank 0 alone evaluates, logs
/// and writes checkpoints; see docs/TRAINING.md, "Multi-GPU".
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
    private readonly Distillation? _distill;
    private readonly ICommunicator _comm;
    // Data parallel: a communicator other than the single rank (a world of one over NCCL runs the real collectives).
    private readonly bool _parallel;

    /// <summary>A trainer of <paramref name="config"/> on <paramref name="train"/> (evaluated on <paramref name="val"/>),
    /// on <paramref name="backend"/> (null: the CPU), as one rank of <paramref name="communicator"/> (null: a single rank,
    /// no collectives at all).</summary>
    public Trainer(TrainConfig config, IImageDataset train, IImageDataset? val, ITrainingBackend? backend = null, ICommunicator? communicator = null)
    {
        _cfg = config;
        _comm = communicator ?? SingleRank.Instance;
        _parallel = _comm is not SingleRank;
        int world = _comm.WorldSize;
        if (config.BatchSize % world != 0)
            throw new VitSharpException($"batch_size {config.BatchSize} is the global batch and must divide by the {world} ranks");
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
            (mc, init) = FineTune.Prepare(ck, size, classes, heads, train.Classes, config.NewHead);
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
            "adamw" when config.Distributed.Zero1 => new Zero1AdamW(_model.Parameters, _tm.Grads, _comm, o.ExcludeFromDecay)
                { Beta1 = o.Beta1, Beta2 = o.Beta2, Eps = o.Eps, WeightDecay = o.WeightDecay },
            "adamw" => new AdamW(_model.Parameters, _tm.Grads, o.ExcludeFromDecay) { Beta1 = o.Beta1, Beta2 = o.Beta2, Eps = o.Eps, WeightDecay = o.WeightDecay },
            "sgd" => new Sgd(_model.Parameters, _tm.Grads, o.ExcludeFromDecay) { Momentum = o.Momentum, WeightDecay = o.WeightDecay, Nesterov = o.Nesterov },
            _ => throw new VitSharpException($"optimizer.name must be adamw or sgd, not '{o.Name}'"),
        };
        // The optimizer's fp32 master copy (bf16 compute) starts from the exact initialisation, not its bf16 rounding.
        if (_opt.Master is not null) _opt.Master.Load(init, config.InitCheckpoint ?? "initialisation");
        if (config.EmaDecay > 0) _ema = new Ema(_opt.Weights, config.EmaDecay);
        var d = config.Data;
        _aug = TrainData.Augmentation(d, mc.ImageSize, mc.InChannels);
        if (config.Distillation.Teacher is not null)
        {
            // The teacher on the student's backend; its forward and both losses become part of every step (recorded too).
            _distill = Distillation.Open(config.Distillation, mc, train.Classes, _aug.Mean, _aug.Std, be);
            _tm.SeparateHeads = _distill.SeparateHeads;
            _tm.Loss = _distill.Loss;
        }
        if (config.AccumulationSteps < 1 || config.BatchSize < 1) throw new VitSharpException("batch_size and accumulation_steps must be at least 1");
        _loader = TrainData.Loader(d, train, config.BatchSize / world, _aug, training: true, config.Seed, _comm.Rank, world);
        StepsPerEpoch = _loader.BatchesPerEpoch / config.AccumulationSteps;
        if (StepsPerEpoch == 0) throw new VitSharpException($"{train.Count} training images do not fill one step of {config.BatchSize}×{config.AccumulationSteps}");
        int bucket = (int)Math.Clamp(config.Distributed.BucketMb * (1 << 20) / 4, Nn.ParameterSet.Alignment, int.MaxValue / 2);
        Buckets = GradientBuckets(_tm.Grads.Count, bucket);
        TotalSteps = (long)StepsPerEpoch * config.Epochs;
        if (config.MaxSteps > 0) TotalSteps = Math.Min(TotalSteps, config.MaxSteps);
        long warmup = config.Schedule.WarmupSteps > 0 ? config.Schedule.WarmupSteps : (long)Math.Round(config.Schedule.WarmupEpochs * StepsPerEpoch);
        _schedule = new LrSchedule(o.Lr, TotalSteps, warmup, config.Schedule.Decay, config.Schedule.MinLr);
        if (config.Mixup > 0 || config.Cutmix > 0) _mixup = new Mixup(config.Mixup, config.Cutmix, config.MixupProb);
    }

    public VisionModel Model => _model;
    /// <summary>The run's teacher and distillation loss (null: plain cross-entropy training).</summary>
    public Distillation? Distillation => _distill;
    /// <summary>This trainer's rank and world (a single rank unless constructed with a communicator).</summary>
    public ICommunicator Communicator => _comm;
    /// <summary>The [offset, offset + length) element ranges of the flat gradient buffer all-reduced one after another,
    /// last layers first (the order the backward produces them, as PyTorch DDP's buckets), each at most
    /// distributed.bucket_mb.</summary>
    public IReadOnlyList<(long Offset, int Length)> Buckets { get; }

    /// <summary>The flat buffer of <paramref name="count"/> elements cut into buckets of at most <paramref name="bucket"/>
    /// elements, from the end.</summary>
    public static List<(long Offset, int Length)> GradientBuckets(long count, int bucket)
    {
        var list = new List<(long, int)>();
        for (long end = count; end > 0; end -= bucket)
        {
            long start = Math.Max(0, end - bucket);
            list.Add((start, checked((int)(end - start))));
        }
        return list;
    }
    public int StepsPerEpoch { get; }
    public long TotalSteps { get; }
    public Action<TrainEvent>? OnEvent { get; set; }
    /// <summary>Resume a checkpoint in the output folder even when it was written under another run configuration
    /// (`vit train --resume`); without it such a folder is refused, naming the keys that differ.</summary>
    public bool ResumeOtherConfig { get; set; }

    /// <summary>Stops (as an interruption would) right after this step's checkpoint; for resume tests. 0: never.</summary>
    public long InterruptAfterStep { get; set; }

    private string Out(string file) => Path.Combine(_cfg.Output, file);

    public TrainResult Run(bool resume = true)
    {
        _wall.Restart();
        bool lead = _comm.Rank == 0;
        Directory.CreateDirectory(_cfg.Output);
        // Temporary files of a run killed mid-write (checkpoint, model, log): gone before this run writes anything.
        if (lead)
            foreach (var orphan in AtomicFile.RemoveOrphans(_cfg.Output))
                OnEvent?.Invoke(new TrainEvent("orphan_removed", 0, TotalSteps, 0, Path: orphan));
        var state = new TrainState(0, 0, 0);
        // Every rank reads the checkpoint itself (a multi-node run keeps its output on a shared file system); nobody writes
        // before the first step, which needs every rank.
        if (resume && File.Exists(Out(CheckpointFile))) state = Restore();
        if (_parallel)
        {
            // Rank 0's weights everywhere (as DDP does), and a check that every rank resumes at the same position.
            _opt.BroadcastWeights(_comm);
            using var pos = _tm.Be.Allocate([3], DType.F32);
            float[] mine = [state.Step, state.Epoch, state.Batch], got = new float[3];
            _tm.Be.CopyFromHost(mine, pos);
            _comm.Broadcast(_tm.Be, pos, 0);
            _tm.Be.CopyToHost(pos, got);
            if (!mine.AsSpan().SequenceEqual(got))
                throw new VitSharpException($"rank {_comm.Rank} would resume at step {state.Step} (epoch {state.Epoch}) but rank 0 at step {got[0]} " +
                    $"(epoch {got[1]}): every rank must see the same {Out(CheckpointFile)} (a shared file system)");
        }
        if (lead) TrimLog(state.Step);
        using var log = lead ? new StreamWriter(Out(LogFile), append: true) : new StreamWriter(Stream.Null);
        var losses = new List<float>();
        EvalResult? lastEval = null;
        var cfg = _cfg;
        var be = _tm.Be;
        var mc = _model.Config;
        int accum = cfg.AccumulationSteps, microPerEpoch = StepsPerEpoch * accum;
        long step = state.Step, lastSaved = state.Step;
        var sw = Stopwatch.StartNew();
        long windowImages = 0; int windowSteps = 0;
        // Loss sum, correct predictions and the last gradient norm accumulate on the backend's device (stats); a host
        // backend reads them every step (divergence stops at once), a GPU only when it logs, so the host never waits
        // for the GPU in between. Images, targets and labels go to the device once per micro-batch.
        bool readEveryStep = be.Device.IsCpu;
        using var io = new StepBuffers(be);
        var host = new float[4];
        double windowLoss = 0, windowCorrect = 0;
        float lastNorm = float.NaN;
        // Reads (and clears) the step statistics into the log window; stops on a non-finite loss or gradient norm.
        void Drain(long atStep, int atEpoch)
        {
            // The global loss (mean over the ranks) and correct count (sum); the gradient norm is already global.
            if (_parallel) _comm.AllReduce(be, io.Stats.View([2], 0), ReduceOp.Sum);
            be.CopyToHost(io.Stats, host);
            if (_parallel) host[0] /= _comm.WorldSize;
            be.Zero(io.Stats);
            if (!float.IsFinite(host[0])) throw Diverged("loss", host[0], atStep, atEpoch, lastSaved);
            if (!float.IsFinite(host[2])) throw Diverged("gradient norm", host[2], atStep, atEpoch, lastSaved);
            windowLoss += host[0]; windowCorrect += host[1]; lastNorm = host[2];
        }
        _tm.ZeroGrad();
        void clip() => be.ClipGradNorm(_tm.Grads.Buffer, cfg.ClipGradNorm, io.Stats);
        // Data parallel: the gradients averaged over the ranks, bucket by bucket, then clipped by the global norm.
        void reduceAndClip()
        {
            foreach (var (off, len) in Buckets) _comm.AllReduce(be, _tm.Grads.Buffer.View([len], off), ReduceOp.Average);
            clip();
        }
        Action closeStep = _parallel ? reduceAndClip : clip;
        // Per-rank masks: rank r > 0 draws dropout and drop path from its own streams (rank 0 keeps the one-rank streams).
        int maskStream = 2 + 16 * _comm.Rank;

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
                var (x, t, labels, dl) = io.Upload(batch, targets, mc);
                // Clipping closes the last micro-batch of a step; a step of one micro-batch replays as one graph on CUDA.
                bool closes = (bi + 1) % accum == 0;
                // Collectives are not recorded into CUDA graphs: a data-parallel step runs eagerly (the same numbers).
                _tm.TrainStep(new TrainableModel.StepIo(x, t, labels, dl, io.Stats, 1f / accum), new Random(Seed(micro, maskStream)),
                    closes ? closeStep : null, replay: accum == 1 && cfg.CudaGraphs && !_parallel);
                windowImages += (long)batch.Count * _comm.WorldSize;
                _loader.Recycle(batch); // its pixels and labels are on the device now
                bi++;
                if (!closes) continue;

                if (readEveryStep)
                {
                    Drain(step, epoch);
                    losses.Add(host[0]);
                }
                float lr = _schedule.At(step);
                _opt.Update(lr);
                _ema?.Update();
                _tm.ZeroGrad();
                step++;
                windowSteps++;
                if (step % Math.Max(1, cfg.LogEverySteps) == 0 || step == TotalSteps)
                {
                    if (!readEveryStep)
                    {
                        Drain(step - 1, epoch); // the window's sums (the window started at zero)
                        losses.Add((float)(windowLoss / windowSteps));
                    }
                    double secs = sw.Elapsed.TotalSeconds;
                    var e = new TrainEvent("step", step, TotalSteps, epoch, (float)(windowLoss / windowSteps), windowCorrect / windowImages,
                        lr, windowImages / Math.Max(secs, 1e-9), lastNorm);
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
                {
                    _comm.Barrier();
                    return new TrainResult(step, true, lastEval, losses);
                }
            }
            // End of an epoch (or of the run): evaluate, then checkpoint at the start of the next epoch. The images/s clock
            // pauses meanwhile, so the next logged rate covers training only.
            sw.Stop();
            bool last = step >= TotalSteps, epochDone = bi >= microPerEpoch;
            if (lead && _val is not null && (last || (epochDone && (epoch + 1) % cfg.EvalEveryEpochs == 0)))
            {
                lastEval = Evaluate();
                Log(log, new TrainEvent("eval", step, TotalSteps, epoch, (float)lastEval.Loss, lastEval.Top1, Eval: lastEval));
                if (_ema is not null)
                {
                    var ema = EvaluateEma();
                    Log(log, new TrainEvent("eval_ema", step, TotalSteps, epoch, (float)ema.Loss, ema.Top1, Eval: ema));
                }
            }
            var next = epochDone ? new TrainState(step, epoch + 1, 0) : new TrainState(step, epoch, bi);
            if (last || !epochDone || (epoch + 1) % cfg.CheckpointEveryEpochs == 0)
            {
                Save(next, log, lastSaved);
                lastSaved = step;
            }
            if (InterruptAfterStep > 0 && step == InterruptAfterStep) { _comm.Barrier(); return new TrainResult(step, true, lastEval, losses); }
            sw.Start();
        }
        _comm.Barrier(); // when Run returns on any rank, rank 0's last checkpoint is written
        return new TrainResult(step, false, lastEval, losses);
    }

    public EvalResult Evaluate()
    {
        if (_val is null) throw new InvalidOperationException("no validation set");
        var loader = TrainData.Loader(_cfg.Data, _val, _cfg.BatchSize, _aug, training: false, _cfg.Seed);
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

    /// <summary>Device buffers of one micro-batch (images, targets, labels, dlogits) and the running step statistics;
    /// reallocated only when the batch size changes (the last batch of an evaluation-free epoch never does: drop_last).</summary>
    private sealed class StepBuffers(ITrainingBackend be) : IDisposable
    {
        private Tensor? _x, _t, _labels, _dl;
        private float[] _labelHost = [];
        public Tensor Stats { get; } = Zeroed(be, be.Allocate([4], DType.F32));

        private static Tensor Zeroed(ITrainingBackend be, Tensor t) { be.Zero(t); return t; }

        public (Tensor X, Tensor Targets, Tensor Labels, Tensor DLogits) Upload(Batch batch, float[] targets, ModelConfig mc)
        {
            int b = batch.Count;
            if (_x is null || _x.Dim(0) != b)
            {
                DisposeBatch();
                _x = be.Allocate([b, mc.InChannels, mc.ImageSize, mc.ImageSize], be.ComputeType);
                _t = be.Allocate([b, mc.NumClasses], DType.F32);
                _labels = be.Allocate([b], DType.F32);
                _dl = be.Allocate([b, mc.NumClasses], be.ComputeType);
                _labelHost = new float[b];
            }
            be.CopyFromHost(batch.Images.AsSpan(0, checked((int)_x.Length)), _x);
            be.CopyFromHost(targets, _t!);
            for (int i = 0; i < b; i++) _labelHost[i] = batch.Labels[i];
            be.CopyFromHost(_labelHost, _labels!);
            return (_x, _t!, _labels!, _dl!);
        }

        private void DisposeBatch() { _x?.Dispose(); _t?.Dispose(); _labels?.Dispose(); _dl?.Dispose(); }

        public void Dispose() { DisposeBatch(); Stats.Dispose(); }
    }

    private TrainingDivergedException Diverged(string what, float value, long step, int epoch, long lastSaved) =>
        new($"{what} is {value} at step {step + 1} (epoch {epoch}): training stopped. " +
            (lastSaved > 0 || File.Exists(Out(CheckpointFile))
                ? $"The last good checkpoint, {Out(CheckpointFile)} (step {lastSaved}), is kept. "
                : "No checkpoint was written yet. ") +
            "Lower the learning rate, add warmup, or enable clip_grad_norm.");

    /// <summary>Called by every rank at the same points: the optimizer state is gathered first (a collective under ZeRO-1),
    /// then rank 0 alone writes.</summary>
    private void Save(TrainState s, StreamWriter log, long lastSaved)
    {
        var optState = _opt.State();
        if (_comm.Rank != 0) return;
        var weights = _opt.Weights.ToHost();
        // Never replace a good checkpoint with one whose weights have already blown up.
        foreach (var (name, w) in weights)
            if (!Array.TrueForAll(w.Data, float.IsFinite))
                throw Diverged($"weight '{name}'", w.Data.First(v => !float.IsFinite(v)), s.Step - 1, s.Epoch, lastSaved);
        TrainCheckpoint.Save(Out(CheckpointFile), _model.Config, s, _cfg.ToJson(), weights, optState, _ema?.Weights.ToHost(), _train.Classes);
        TrainCheckpoint.ExportModel(Out(ModelFile), _model.Config, weights, _train.Classes, _aug.Mean, _aug.Std, _cfg.Data.Recipe, _cfg.Data.SourceSize);
        if (_ema is not null) TrainCheckpoint.ExportModel(Out("model_ema.safetensors"), _model.Config, _ema.Weights.ToHost(), _train.Classes, _aug.Mean, _aug.Std, _cfg.Data.Recipe, _cfg.Data.SourceSize);
        Log(log, new TrainEvent("checkpoint", s.Step, TotalSteps, s.Epoch, Path: Out(CheckpointFile)));
    }

    private TrainState Restore()
    {
        var path = Out(CheckpointFile);
        var ck = TrainCheckpoint.Load(path);
        if (ck.ModelConfigJson != _model.Config.ToJson().ToJsonString())
            throw new CheckpointException(path, "was written for another model configuration; use another --output to start afresh");
        if (ck.RunConfigJson is { } stored && !ResumeOtherConfig)
        {
            var differ = ConfigDifferences(System.Text.Json.Nodes.JsonNode.Parse(stored), System.Text.Json.Nodes.JsonNode.Parse(_cfg.ToJson()), "");
            if (differ.Count > 0)
                throw new VitSharpException($"{path} holds a run with another configuration ({string.Join(", ", differ.Take(6))}" +
                    $"{(differ.Count > 6 ? ", …" : "")}): pass --resume to continue it with this configuration, --no-resume to start afresh, or another --output");
        }
        _opt.LoadWeights(ck.Weights, path);
        _opt.LoadState(ck.Optimizer, ck.State.Step, path);
        if (_ema is not null)
            _ema.Weights.Load(ck.Ema ?? throw new CheckpointException(path, "has no EMA weights but the run uses ema_decay"), path);
        OnEvent?.Invoke(new TrainEvent("resume", ck.State.Step, TotalSteps, ck.State.Epoch, Path: path));
        return ck.State;
    }

    /// <summary>Dotted keys whose values differ between two run configurations (the output folder itself excepted).</summary>
    private static List<string> ConfigDifferences(System.Text.Json.Nodes.JsonNode? a, System.Text.Json.Nodes.JsonNode? b, string prefix)
    {
        var keys = new List<string>();
        if (a is System.Text.Json.Nodes.JsonObject oa && b is System.Text.Json.Nodes.JsonObject ob)
        {
            foreach (var k in oa.Select(kv => kv.Key).Union(ob.Select(kv => kv.Key)).Order(StringComparer.Ordinal))
            {
                string name = prefix.Length == 0 ? k : prefix + "." + k;
                if (name is "output" or "distributed") continue;
                keys.AddRange(ConfigDifferences(oa[k], ob[k], name));
            }
            return keys;
        }
        if (!System.Text.Json.Nodes.JsonNode.DeepEquals(a, b)) keys.Add(prefix);
        return keys;
    }

    private void TrimLog(long step) => TrainLog.Trim(Out(LogFile), step);

    private readonly Stopwatch _wall = new();

    private void Log(StreamWriter log, TrainEvent e)
    {
        if (_comm.Rank != 0) return;
        e = e with { WallSeconds = Math.Round(_wall.Elapsed.TotalSeconds, 2) };
        TrainLog.Write(log, e);
        OnEvent?.Invoke(e);
    }

    public void Dispose()
    {
        _distill?.Dispose();
        _ema?.Dispose();
        _opt.Dispose();
        _tm.Dispose();
        _model.Dispose();
    }
}
