using VitSharp.Backends;
using VitSharp.Backends.Cpu;
using VitSharp.Checkpoints;
using VitSharp.Models;
using VitSharp.Nn;
using VitSharp.Tensors;

namespace VitSharp.Training;

/// <summary>
/// DeiT-style knowledge distillation (Touvron et al. 2021; facebookresearch/deit's <c>DistillationLoss</c>): a teacher
/// checkpoint runs in inference mode on the student's backend, on the very batch the student sees (augmented, mixed), and
/// the step's loss becomes
/// <code>(1 − α)·CE(class head, targets) + α·D(distillation head, teacher)</code>
/// with D = CE against the teacher's arg-max (hard) or τ²/K·KL(softmax(teacher/τ) ‖ softmax(student/τ)) (soft; DeiT's
/// <c>kl_div(…, reduction='sum', log_target=True)·τ²/numel</c>). The class head's targets keep label smoothing and
/// mixup/cutmix. A student with <c>dist_token</c> trains with separate heads (timm's <c>distilled_training</c>: the class
/// token's head learns the labels, the distillation token's the teacher, inference takes their mean); a student without
/// one distils through its class head (DeiT's "usual distillation": both terms on the same logits).
/// Everything runs on the device (teacher forward, both losses, their gradients), so a step records into a CUDA graph.
/// </summary>
public sealed class Distillation : IDisposable
{
    private Distillation(string path, VisionModel teacher, DistillationKind kind, float alpha, float tau, bool separateHeads)
    {
        TeacherPath = path;
        Teacher = teacher;
        Kind = kind;
        Alpha = alpha;
        Tau = tau;
        SeparateHeads = separateHeads;
    }

    public string TeacherPath { get; }
    /// <summary>The teacher, on the student's backend, its patch projection folded with the re-normalisation (see
    /// <see cref="Open"/>).</summary>
    public VisionModel Teacher { get; }
    public DistillationKind Kind { get; }
    public float Alpha { get; }
    public float Tau { get; }
    /// <summary>Whether the student has a distillation head (trained apart from the class head); else the distillation
    /// term goes through the class head.</summary>
    public bool SeparateHeads { get; }
    /// <summary>Whether the teacher's normalisation differs from the student's, so that its patch projection was folded.</summary>
    public bool Renormalised { get; private init; }

    /// <summary>
    /// Loads the teacher of <paramref name="config"/> for a student of <paramref name="student"/> trained on
    /// <paramref name="classes"/> with inputs normalised by <paramref name="mean"/>/<paramref name="std"/> (per channel,
    /// or one value for all), on <paramref name="backend"/>.
    /// The teacher must have the data's classes (count, and order where it names them) and the student's channels and
    /// image size: a <see cref="CheckpointException"/> naming the file otherwise. A teacher trained with another
    /// normalisation (its stated recipe, else its format's convention) sees the batch re-normalised per channel,
    /// x_t = (x·std_s + mean_s − mean_t)/std_t = a_c·x + b_c, folded exactly into its patch projection (a linear map of
    /// non-overlapping patches: W'[o,c,·] = a_c·W[o,c,·], bias'[o] = bias[o] + Σ b_c·ΣW[o,c,·]), so no extra pass over
    /// the images runs; a teacher whose first op is not linear in the pixels (vit-pytorch's pixel_norm) must then be
    /// given data of its own normalisation.
    /// </summary>
    public static Distillation Open(DistillationConfig config, ModelConfig student, IReadOnlyList<string> classes, float[] mean, float[] std,
        ITrainingBackend backend)
    {
        var path = config.Teacher ?? throw new ArgumentException("no teacher in the distillation config");
        if (!File.Exists(path) && !Directory.Exists(path))
            throw new CheckpointException(path, "teacher checkpoint not found (distillation.teacher, --teacher)");
        var ck = Checkpoint.Load(path, new LoadOptions { Heads = config.TeacherHeads });
        var tc = ck.Config;
        if (tc.NumClasses != classes.Count)
            throw new CheckpointException(path, tc.NumClasses <= 0
                ? $"the teacher has no classification head; the data has {classes.Count} classes"
                : $"the teacher has {tc.NumClasses} classes but the data has {classes.Count}");
        if (ck.Labels is { } labels)
            for (int i = 0; i < labels.Length; i++)
                if (!string.Equals(labels[i], classes[i], StringComparison.Ordinal))
                    throw new CheckpointException(path, $"the teacher's class {i} is '{labels[i]}' but the data's is '{classes[i]}': its head would teach other classes");
        if (tc.InChannels != student.InChannels)
            throw new CheckpointException(path, $"the teacher takes {tc.InChannels} channels, the student {student.InChannels}");
        if (tc.ImageSize != student.ImageSize && !(tc is VitConfig { DynamicImgSize: true } && student.ImageSize % tc.PatchSize == 0))
            throw new CheckpointException(path, $"the teacher runs at {tc.ImageSize}×{tc.ImageSize} but the student at {student.ImageSize}×{student.ImageSize}: " +
                "the teacher sees the student's batch, so train the student at the teacher's size (or give a teacher of the student's)");
        var recipe = Inference.Recipes.For(ck);
        int c = student.InChannels;
        var (scale, shift) = Renormalisation(mean, std, recipe.Mean, recipe.Std, c);
        bool renormalise = scale.Any(v => v != 1) || shift.Any(v => v != 0);
        var model = ck.CreateModel(backend);
        try
        {
            if (renormalise)
            {
                if (tc is VitConfig { PixelNorm: true })
                    throw new CheckpointException(path, "the teacher normalises its patches (pixel_norm) and was trained with another mean/std " +
                        $"({Format(recipe.Mean)}/{Format(recipe.Std)}, the student's {Format(mean)}/{Format(std)}): train the student with the teacher's normalisation");
                if (tc is VitConfig { ConvTokenizer: not null })
                    throw new CheckpointException(path, "the teacher's convolutional tokenizer (zero padding, no bias) cannot absorb another mean/std " +
                        $"({Format(recipe.Mean)}/{Format(recipe.Std)}, the student's {Format(mean)}/{Format(std)}): train the student with the teacher's normalisation");
                string proj = tc is MixerConfig ? "stem.proj" : "patch_embed.proj";
                var weights = model.Parameters.ToHost();
                Fold(weights[proj + ".weight"], weights[proj + ".bias"], scale, shift);
                model.Load(weights, path);
            }
            if (backend is CpuBackend) model.PrepareForInference();
            bool separate = student is VitConfig { DistToken: true, NumClasses: > 0 };
            return new Distillation(path, model, config.ParseKind(), config.Alpha, config.Tau, separate) { Renormalised = renormalise };
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    private static string Format(float[] v) => "[" + string.Join(", ", v.Select(x => x.ToString("G4", System.Globalization.CultureInfo.InvariantCulture))) + "]";

    /// <summary>Per channel, the a_c and b_c of x_t = a_c·x + b_c that turn the student's normalised pixels into the
    /// teacher's: a = std_s/std_t, b = (mean_s − mean_t)/std_t (one-value mean/std apply to every channel). Exactly
    /// a = 1, b = 0 where the two agree.</summary>
    public static (float[] Scale, float[] Shift) Renormalisation(float[] studentMean, float[] studentStd, float[] teacherMean, float[] teacherStd, int channels)
    {
        static float At(float[] v, int c) => v.Length == 1 ? v[0] : v[c];
        var a = new float[channels];
        var b = new float[channels];
        for (int c = 0; c < channels; c++)
        {
            float ms = At(studentMean, c), ss = At(studentStd, c), mt = At(teacherMean, c), st = At(teacherStd, c);
            a[c] = ss == st ? 1f : (float)((double)ss / st);
            b[c] = ms == mt ? 0f : (float)(((double)ms - mt) / st);
        }
        return (a, b);
    }

    /// <summary>Folds x ↦ a_c·x + b_c (per input channel) into a patch projection (D, C, P, P) and its bias (D), in double.</summary>
    public static void Fold(HostArray weight, HostArray bias, float[] scale, float[] shift)
    {
        int d = weight.Shape[0], c = weight.Shape[1];
        int per = weight.Data.Length / (d * c);
        if (scale.Length != c || shift.Length != c || bias.Data.Length != d)
            throw new ArgumentException($"Fold: a {Shape.Format(weight.Shape)} projection with {scale.Length} channel scales");
        for (int o = 0; o < d; o++)
        {
            double add = 0;
            for (int ch = 0; ch < c; ch++)
            {
                int at = (o * c + ch) * per;
                double sum = 0;
                for (int i = 0; i < per; i++)
                {
                    sum += weight.Data[at + i];
                    weight.Data[at + i] = (float)((double)weight.Data[at + i] * scale[ch]);
                }
                add += sum * shift[ch];
            }
            bias.Data[o] = (float)(bias.Data[o] + add);
        }
    }

    /// <summary>
    /// The step's loss (<see cref="TrainableModel.Loss"/>): the teacher's forward on the student's images (an inference
    /// pass in the student pass's workspace, so a recorded step owns its scratch), then the class head's cross-entropy
    /// with weight 1 − α and the distillation term with weight α, both into <paramref name="io"/>'s statistics. Returns
    /// the distillation head's gradient (separate heads), or null after adding the term's gradient into the class head's.
    /// </summary>
    public Tensor? Loss(Pass pass, TrainableModel.StepIo io, ModelOutput output)
    {
        var be = pass.Tb;
        var cls = output.Logits ?? throw new InvalidOperationException("the student has no classification head");
        if (SeparateHeads != output.DistLogits is not null)
            throw new InvalidOperationException(SeparateHeads ? "the student's forward did not return its distillation head's logits (TrainableModel.SeparateHeads)"
                : "the student returned two heads' logits but the distillation runs through the class head");
        using var teacher = Teacher.Forward(Pass.Inference(Teacher.Backend, pass.Ws), io.Images);
        var t = teacher.Logits!;
        be.CrossEntropyStats(cls, io.Targets, io.Labels, io.DLogits, io.GradScale * (1 - Alpha), io.Stats);
        var d = pass.Get(cls.Shape);
        be.DistillationLoss(output.DistLogits ?? cls, t, Kind, Tau, d, io.GradScale * Alpha, io.Stats);
        if (SeparateHeads) return d;
        be.Add(io.DLogits, d, io.DLogits);
        return null;
    }

    public void Dispose() => Teacher.Dispose();
}
