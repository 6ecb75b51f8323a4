using VitSharp.Backends;
using VitSharp.Checkpoints;
using VitSharp.Nn;
using VitSharp.Tensors;

namespace VitSharp.Models;

/// <summary>What a forward pass returns, on the model's device; the caller disposes it.</summary>
public sealed class ModelOutput : IDisposable
{
    /// <summary>Tokens after the final norm (B, T, D) — timm's forward_features.</summary>
    public required Tensor Tokens { get; init; }
    /// <summary>Pooled (and pre-logits) features (B, F).</summary>
    public required Tensor Pooled { get; init; }
    /// <summary>Class scores (B, classes), or null for a features-only model.</summary>
    public Tensor? Logits { get; init; }
    /// <summary>The distillation head's logits, only from a training pass with <see cref="Pass.SeparateHeads"/> (then
    /// <see cref="Logits"/> holds the class head's alone); null otherwise.</summary>
    public Tensor? DistLogits { get; init; }
    /// <summary>Attention weights per layer (B, H, T, T) when asked for.</summary>
    public IReadOnlyList<Tensor> AttentionProbs { get; init; } = [];

    public void Dispose()
    {
        Tokens.Dispose();
        Pooled.Dispose();
        Logits?.Dispose();
        DistLogits?.Dispose();
        foreach (var p in AttentionProbs) p.Dispose();
    }
}

/// <summary>An image model whose parameters live in one buffer on one backend.</summary>
public abstract class VisionModel : IDisposable
{
    protected VisionModel(ModelConfig config, IBackend backend, IEnumerable<(string, int[])> layout)
    {
        config.Validate();
        Config = config;
        Backend = backend;
        Parameters = new ParameterSet(backend, layout);
    }

    public ModelConfig Config { get; }
    public IBackend Backend { get; }
    public ParameterSet Parameters { get; }

    public static VisionModel Create(ModelConfig config, IBackend backend) => config switch
    {
        VitConfig v => new VisionTransformer(v, backend),
        MixerConfig m => new MlpMixer(m, backend),
        _ => throw new ArgumentException($"unknown config {config.GetType().Name}"),
    };

    /// <summary>Runs images (B, C, H, W) already on the model's device and in its compute dtype (an inference pass over
    /// the model's reused workspace; one at a time).</summary>
    public ModelOutput Forward(Tensor images, bool captureAttention = false)
    {
        CheckInput(images.Shape);
        lock (ForwardLock)
        {
            Activations.Reset();
            return Forward(Pass.Inference(Backend, Activations, captureAttention), images);
        }
    }

    /// <summary>
    /// The model, written once: inference, training (saved activations, dropout and drop-path masks), attention capture and
    /// ONNX recording are passes of this forward (see <see cref="Pass"/>). Every layer runs on <see cref="Pass.Be"/>, which
    /// need not be <see cref="Backend"/> (the ONNX recorder). Outputs are the caller's in inference, the workspace's otherwise.
    /// </summary>
    public abstract ModelOutput Forward(Pass pass, Tensor images);

    /// <summary>After a training <see cref="Forward(Pass, Tensor)"/> on the same pass: accumulates every parameter
    /// gradient into the pass's gradients, given dL/dlogits.</summary>
    public abstract void Backward(Pass pass, Tensor dlogits);

    /// <summary>The backward of a training pass with <see cref="Pass.SeparateHeads"/>: <paramref name="dDistLogits"/> is
    /// the gradient of the distillation head's logits (null: a model without one, or a pass without separate heads,
    /// which is <see cref="Backward(Pass, Tensor)"/>).</summary>
    public virtual void Backward(Pass pass, Tensor dlogits, Tensor? dDistLogits)
    {
        if (dDistLogits is not null) throw new InvalidOperationException($"{GetType().Name} has no distillation head");
        Backward(pass, dlogits);
    }

    /// <summary>The training pass whose activations the layers hold now (the layers keep one pass's saved tensors).</summary>
    internal Pass? TrainingPass { get; set; }

    public void Load(IReadOnlyDictionary<string, HostArray> weights, string source)
    {
        lock (ForwardLock)
        {
            bool prepared = _prepacked.Count > 0, int8 = _int8.Count > 0;
            if (_fp8.Count > 0) throw new InvalidOperationException("Load on a model running FP8: its input scales were calibrated for the old weights");
            ReleasePrepacked(restore: false);
            ReleaseInt8(restore: false);
            ReleaseLeases();
            Parameters.Load(weights, source);
            WeightsChanged();
            if (prepared) PrepareForInference();
            if (int8) UseInt8();
        }
    }

    /// <summary>
    /// For inference only: loads <paramref name="weights"/> as <see cref="Load"/>, then <see cref="UseInt8"/> (when
    /// <paramref name="int8"/>, or with <paramref name="stored"/>: a quantised checkpoint's int8 weights) and
    /// <see cref="PrepareForInference"/>, making the packed and int8 copies straight from <paramref name="weights"/>.
    /// On a host backend the floats of those weights are then never written into <see cref="Parameters"/> (their
    /// memory stays untouched): the packed or int8 copy is the one the products read, and the values stay where
    /// <paramref name="weights"/> hold them — for a mapped checkpoint (<see cref="LoadOptions.MapWeights"/>), the
    /// file's pages, dropped from this process's resident memory once packed and faulted back in only if read.
    /// So the process holds about one copy of the weights. Reading them still works (<see cref="HostFloats"/>,
    /// <see cref="ParameterSet.ToHost"/>); releasing a packed or int8 copy writes the values in first.
    /// </summary>
    public void LoadForInference(IReadOnlyDictionary<string, HostArray> weights, string source, bool int8 = false,
        IReadOnlyDictionary<string, (sbyte[] Values, float[] Scales)>? stored = null)
    {
        bool runInt8 = int8 || stored is not null;
        if (runInt8 && Backend is not IInt8Linear)
            throw new VitSharpException($"int8 inference runs on the CPU backend only, not on {Backend.Device} ({Backend.GetType().Name})");
        var packer = Backend as IWeightPrepacking;
        if (!Backend.Device.IsCpu)
        {
            Load(weights, source);
            if (runInt8) UseInt8(stored);
            PrepareForInference();
            return;
        }
        lock (ForwardLock)
        {
            ReleasePrepacked(restore: false);
            ReleaseInt8(restore: false);
            ReleaseLeases();
            var int8Names = runInt8 ? Int8Targets.ToHashSet(StringComparer.Ordinal) : [];
            Parameters.Load(weights, source, name => int8Names.Contains(name) || packer is not null && Packs(name));
            WeightsChanged();
            // a model that outlives its checkpoint keeps the mapping its deferred values are read from
            foreach (var file in Parameters.Deferred.Select(n => Parameters.DeferredValues(n)!.Source?.File).OfType<MappedFile>().Distinct())
                if (MappedLease.Share(file) is { } lease) _leases.Add(lease);
            float[]? scratch = null;
            ReadOnlySpan<float> Values(HostArray a)
            {
                if (a.Source is MappedTensor mt && mt.TryF32(out var mapped)) return mapped;
                if (a.IsMaterialized) return a.Data;
                if (scratch is null || scratch.Length < a.Count) scratch = new float[a.Count];
                a.CopyTo(scratch.AsSpan(0, (int)a.Count));
                return scratch.AsSpan(0, (int)a.Count);
            }
            var q = Backend as IInt8Linear;
            foreach (var name in Int8Targets.Where(int8Names.Contains))
            {
                var w = Parameters[name];
                int n = w.Dim(0), k = w.Dim(1);
                var m = stored is not null && stored.TryGetValue(name, out var st)
                    ? Int8Matrix.FromQuantized(st.Values, st.Scales, n, k)
                    : Int8Matrix.Quantize(Values(weights[name]), n, k);
                q!.UseInt8(w, m);
                _int8.Add(w);
                Drop(weights[name]);
            }
            if (packer is not null)
                foreach (var (name, _, _) in Parameters.Layout)
                {
                    if (!Packs(name) || int8Names.Contains(name)) continue;
                    var w = Parameters[name];
                    packer.Prepack(w, Values(weights[name]));
                    _prepacked.Add(w);
                    Drop(weights[name]);
                }
            foreach (var lease in _leases) lease.File.DropPages(0, lease.File.Length); // what was copied into the buffer
        }

        bool Packs(string name) => Parameters[name].Rank >= 2 && name.EndsWith(".weight", StringComparison.Ordinal);
        static void Drop(HostArray a)
        {
            if (a.Source is MappedTensor mt) mt.File.DropPages(mt.Offset, mt.ByteLength);
            else if (a.Source is DequantizedTensor dq) dq.File.DropPages(dq.Values.Offset, dq.Values.ByteLength);
        }
    }

    private readonly List<MappedLease> _leases = new();

    private void ReleaseLeases()
    {
        foreach (var l in _leases) l.Dispose();
        _leases.Clear();
    }

    /// <summary>Called after <see cref="Load"/>: a model that caches something derived from its weights drops it.</summary>
    protected virtual void WeightsChanged() { }

    /// <summary>Held by Forward (one forward at a time per model: it reuses <see cref="Activations"/>) and by weight changes.</summary>
    protected readonly object ForwardLock = new();

    /// <summary>Intermediate activations, kept from one forward to the next (same shapes reuse the same memory).
    /// Use under <see cref="ForwardLock"/>, after <see cref="Workspace.Reset"/>.</summary>
    protected Workspace Activations => _activations ??= new Workspace(Backend);
    private Workspace? _activations;

    private readonly List<Tensor> _prepacked = new();

    /// <summary>
    /// For inference only: lets the backend keep the weight matrices pre-packed for its matrix products (CPU: skips
    /// re-packing every weight on every forward). The weights must then not change except through <see cref="Load"/>
    /// (which re-packs); do not call this on a model that is being trained. No-op on backends without the capability.
    /// </summary>
    public void PrepareForInference()
    {
        if (Backend is not IWeightPrepacking packer) return;
        lock (ForwardLock)
        {
            foreach (var (name, shape, _) in Parameters.Layout)
            {
                if (shape.Length < 2 || !name.EndsWith(".weight", StringComparison.Ordinal)) continue;
                var w = Parameters[name];
                if (_int8.Contains(w) || _prepacked.Contains(w)) continue;   // runs int8: its fp32 packed copy would never be read
                if (Parameters.DeferredValues(name) is { } deferred)
                {
                    var v = new float[deferred.Count];
                    deferred.CopyTo(v);
                    packer.Prepack(w, v);
                }
                else packer.Prepack(w);
                _prepacked.Add(w);
            }
        }
    }

    public bool IsPreparedForInference => _prepacked.Count > 0;

    private readonly List<Tensor> _int8 = new();

    /// <summary>The weights int8 applies to: every block's Linear weights (attention qkv and proj, MLP fc1 and fc2; a
    /// Mixer's token and channel MLPs). The patch projection and the head stay in floating point (they see the raw
    /// pixels and make the decision; together a small share of the products).</summary>
    public IEnumerable<string> Int8Targets => Parameters.Layout
        .Where(l => l.Shape.Length == 2 && IsInt8Target(l.Name))
        .Select(l => l.Name);

    /// <summary>Whether a parameter name is one <see cref="Int8Targets"/> would hold (blocks.*.{qkv,proj,fc1,fc2}.weight).</summary>
    public static bool IsInt8Target(string name) =>
        name.StartsWith("blocks.", StringComparison.Ordinal) &&
        (name.EndsWith(".qkv.weight", StringComparison.Ordinal) || name.EndsWith(".proj.weight", StringComparison.Ordinal) ||
         name.EndsWith(".fc1.weight", StringComparison.Ordinal) || name.EndsWith(".fc2.weight", StringComparison.Ordinal));

    /// <summary>
    /// For inference only: runs <see cref="Int8Targets"/> as int8 products on a backend with <see cref="IInt8Linear"/>
    /// (weights symmetric per output channel, activations quantised per token at run time, int32 sums; LayerNorm,
    /// softmax, GELU and the residual stream stay fp32). Each weight is quantised from the model's parameters unless
    /// <paramref name="stored"/> holds its int8 copy (a quantised checkpoint's, used as is). Their floating-point packed
    /// copies are dropped. A backend without the capability is a <see cref="VitSharpException"/>.
    /// </summary>
    public void UseInt8(IReadOnlyDictionary<string, (sbyte[] Values, float[] Scales)>? stored = null)
    {
        if (Backend is not IInt8Linear q)
            throw new VitSharpException($"int8 inference runs on the CPU backend only, not on {Backend.Device} ({Backend.GetType().Name})");
        lock (ForwardLock)
        {
            ReleaseInt8(restore: true);
            foreach (var name in Int8Targets)
            {
                var w = Parameters[name];
                int n = w.Dim(0), k = w.Dim(1);
                var m = stored is not null && stored.TryGetValue(name, out var s)
                    ? Int8Matrix.FromQuantized(s.Values, s.Scales, n, k)
                    : Int8Matrix.Quantize(HostFloats(w), n, k);
                if (Backend is IWeightPrepacking packer && _prepacked.Remove(w)) packer.Release(w); // (deferred values stay deferred: int8 reads its own copy)
                q.UseInt8(w, m);
                _int8.Add(w);
            }
        }
    }

    /// <summary>Whether <see cref="UseInt8"/> is in effect.</summary>
    public bool IsInt8 => _int8.Count > 0;

    private readonly List<Tensor> _fp8 = new();

    /// <summary>
    /// Calibration for <see cref="UseFp8(IReadOnlyDictionary{string, float}, IReadOnlyDictionary{string, ValueTuple{byte[], float}}?)"/>: runs each batch (B, C, H, W host floats, preprocessed as for inference)
    /// through the model's own forward and returns, for each of <see cref="Int8Targets"/>, the largest |x| its Linear
    /// saw at its input — in the compute type of the backend, as the FP8 products will see it.
    /// </summary>
    public IReadOnlyDictionary<string, float> CalibrateInputs(IEnumerable<HostArray> batches)
    {
        lock (ForwardLock)
        {
            var names = Int8Targets.ToDictionary(n => Parameters[n].Pointer, n => n);
            var recorder = new AbsMaxRecorder(Backend, names);
            int seen = 0;
            foreach (var b in batches)
            {
                CheckInput(b.Shape);
                using var x = Backend.Allocate(b.Shape, Backend.ComputeType);
                Backend.CopyFromHost(b.Data, x);
                Activations.Reset();
                using (Forward(Pass.Inference(recorder, Activations), x)) { }
                seen++;
            }
            if (seen == 0) throw new VitSharpException("FP8 calibration needs at least one batch of images");
            return new Dictionary<string, float>(recorder.AbsMax, StringComparer.Ordinal);
        }
    }

    /// <summary>
    /// For inference only: runs <see cref="Int8Targets"/> (the blocks' Linear layers) as FP8 E4M3 products on a backend
    /// with <see cref="IFp8Linear"/>: each weight quantised with one per-tensor scale (max |w| / 448, or
    /// <paramref name="stored"/>'s codes and scale as they are), its input with the calibrated
    /// <paramref name="inputAbsMax"/> / 448 (<see cref="CalibrateInputs"/>). The patch projection, the head, LayerNorm,
    /// attention, GELU and the residual stream stay bf16. Returns the number of layers that run FP8 (a shape FP8 products
    /// cannot take stays bf16).
    /// </summary>
    public int UseFp8(IReadOnlyDictionary<string, float> inputAbsMax, IReadOnlyDictionary<string, (byte[] Codes, float Scale)>? stored = null) =>
        UseFp8(name =>
        {
            if (!inputAbsMax.TryGetValue(name, out var amax))
                throw new VitSharpException($"FP8: no calibrated input scale for {name}");
            var (codes, scale) = stored is not null && stored.TryGetValue(name, out var st) ? st : Fp8.Quantize(HostFloats(Parameters[name]));
            return (codes, scale, Fp8.ScaleFor(amax));
        });

    /// <summary>
    /// <see cref="UseFp8(IReadOnlyDictionary{string, float}, IReadOnlyDictionary{string, ValueTuple{byte[], float}}?)"/>
    /// with an FP8 checkpoint's stored weights (<see cref="Checkpoint.Fp8Weights"/>): its E4M3 codes, weight scales and
    /// input scales as they are, so no calibration runs (and the input scales are the file's bit for bit, not re-derived
    /// from a maximum). Every one of <see cref="Int8Targets"/> must be stored.
    /// </summary>
    public int UseFp8(IReadOnlyDictionary<string, Fp8Weight> stored) =>
        UseFp8(name => stored.TryGetValue(name, out var st) ? (st.Codes, st.Scale, st.InputScale)
            : throw new VitSharpException($"FP8: the checkpoint stores no FP8 codes for {name}"));

    private int UseFp8(Func<string, (byte[] Codes, float Scale, float InputScale)> weightOf)
    {
        if (Backend is not IFp8Linear q)
            throw new VitSharpException($"FP8 inference runs on CUDA GPUs only, not on {Backend.Device}");
        if (!q.SupportsFp8(out var why)) throw new VitSharpException(why);
        lock (ForwardLock)
        {
            ReleaseFp8();
            foreach (var name in Int8Targets)
            {
                var (codes, scale, inputScale) = weightOf(name);
                if (q.UseFp8(Parameters[name], codes, scale, inputScale)) _fp8.Add(Parameters[name]);
            }
            return _fp8.Count;
        }
    }

    /// <summary>Whether <c>UseFp8</c> is in effect.</summary>
    public bool IsFp8 => _fp8.Count > 0;

    private void ReleaseFp8()
    {
        if (Backend is IFp8Linear q) foreach (var w in _fp8) q.ReleaseFp8(w);
        _fp8.Clear();
    }

    /// <summary>A copy of one of this model's tensors (a parameter or an output) in host memory.</summary>
    public float[] HostFloats(Tensor t)
    {
        var data = new float[t.Length];
        if (Parameters.TryNameOf(t) is { } name && Parameters.DeferredValues(name) is { } deferred) deferred.CopyTo(data);
        else Backend.CopyToHost(t, data);
        return data;
    }

    /// <summary>Back to floating-point products; with <paramref name="restore"/>, weights whose floats were deferred
    /// (<see cref="LoadForInference"/>) get them written in first, since their products read them again.</summary>
    private void ReleaseInt8(bool restore)
    {
        if (Backend is IInt8Linear q)
            foreach (var w in _int8)
            {
                if (restore && !_prepacked.Contains(w)) Parameters.Materialize(Parameters.NameOf(w));
                q.ReleaseInt8(w);
            }
        _int8.Clear();
    }

    private void ReleasePrepacked(bool restore)
    {
        if (Backend is IWeightPrepacking packer)
            foreach (var w in _prepacked)
            {
                if (restore) Parameters.Materialize(Parameters.NameOf(w));
                packer.Release(w);
            }
        _prepacked.Clear();
    }

    /// <summary>Host convenience: NCHW floats in, the output kind asked for out (logits, pooled features or tokens).</summary>
    public HostArray Run(HostArray images, OutputKind kind = OutputKind.Logits)
    {
        CheckInput(images.Shape);
        using var x = Backend.Allocate(images.Shape, Backend.ComputeType);
        Backend.CopyFromHost(images.Data, x);
        using var output = Forward(x);
        var t = kind switch
        {
            OutputKind.Tokens => output.Tokens,
            OutputKind.Pooled => output.Pooled,
            _ => output.Logits ?? output.Pooled,
        };
        return new HostArray(t.Shape, HostFloats(t));
    }

    public virtual void CheckInput(int[] shape)
    {
        var c = Config;
        if (shape.Length != 4 || shape[1] != c.InChannels || shape[2] != c.ImageSize || shape[3] != c.ImageSize)
            throw new InputException(
                $"input has shape {Shape.Format(shape)} but the model takes (B,{c.InChannels},{c.ImageSize},{c.ImageSize}); " +
                "resize the input, or run the model at the input's size (--img-size) to resample its position embeddings");
        if (shape[0] <= 0) throw new InputException("input batch is empty");
    }

    public void Dispose()
    {
        lock (ForwardLock)
        {
            ReleasePrepacked(restore: false);
            ReleaseInt8(restore: false);
            ReleaseFp8();
            ReleaseLeases();
            _activations?.Dispose();
            WeightsChanged();
        }
        Parameters.Dispose();
        GC.SuppressFinalize(this);
    }
}

/// <summary>What a forward pass returns: class logits (B, classes), pooled features (B, F) or all tokens (B, T, D).</summary>
public enum OutputKind { Logits, Pooled, Tokens }
