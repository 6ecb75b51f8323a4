using System.CommandLine;
using VitSharp.Backends;
using VitSharp.Backends.Cpu;
using VitSharp.Checkpoints;
using VitSharp.Models;
using VitSharp.Tensors;

namespace VitSharp.Cli;

/// <summary>Options every command that loads a checkpoint shares, and their translation into LoadOptions.</summary>
public sealed class CheckpointOptions
{
    /// <param name="defaultModel">--checkpoint may be left out: the shipped model (<see cref="DefaultModel"/>) is used.</param>
    public CheckpointOptions(bool defaultModel = false)
    {
        UsesDefaultModel = defaultModel;
        Checkpoint = new("--checkpoint", "-c")
        {
            Description = defaultModel
                ? "model file (.safetensors, Google .npz) or Hugging Face folder (default: the shipped CIFAR-10 ViT, docs/MODELS.md)"
                : "model file (.safetensors, Google .npz) or Hugging Face folder",
            Required = !defaultModel,
        };
    }

    public bool UsesDefaultModel { get; }
    public Option<string> Checkpoint { get; }
    public Option<int?> ImageSize { get; } = new("--img-size") { Description = "run at this resolution (position embeddings are resampled)" };
    public Option<int?> Heads { get; } = new("--heads") { Description = "attention heads (default: from the checkpoint, else width/64)" };
    public Option<string?> Pool { get; } = new("--pool") { Description = "pooling (timm's global_pool): token, avg, max or map" };
    public Option<string?> Gelu { get; } = new("--gelu", "--activation")
    {
        Description = "MLP activation: erf (timm, PyTorch), tanh (Google's Flax code, SigLIP), quick_gelu (OpenAI CLIP), relu or silu",
    };
    public Option<float?> LayerNormEps { get; } = new("--layer-norm-eps")
    {
        Description = "LayerNorm eps when the checkpoint does not state it (timm and npz files; default 1e-6)",
    };
    public Option<int?> DimHead { get; } = new("--dim-head") { Description = "each head's width when it is not width/heads (vit-pytorch's dim_head)" };
    public Option<bool> DynamicImgSize { get; } = new("--dynamic-img-size")
    {
        Description = "run any input size the patch divides, position embeddings resampled per size (timm's dynamic_img_size)",
    };
    public Option<string?> NameMap { get; } = new("--name-map")
    {
        Description = "JSON file of ordered regex → timm-name rules (and config values) that renames another codebase's checkpoint",
    };
    public Option<string> Device { get; } = SharedOptions.Device();
    public Option<bool> AllowNonFinite { get; } = new("--allow-non-finite") { Description = "load weights holding NaN or Inf (refused by default)" };

    public void AddTo(Command command, bool device = true)
    {
        foreach (var o in new Option[] { Checkpoint, ImageSize, Heads, DimHead, Pool, Gelu, LayerNormEps, DynamicImgSize, NameMap, AllowNonFinite }) command.Options.Add(o);
        if (device) command.Options.Add(Device);
    }

    /// <summary>The --checkpoint given, else (for commands that allow it) the shipped default model.</summary>
    public string CheckpointPath(ParseResult r) =>
        r.GetValue(Checkpoint) ?? (UsesDefaultModel ? DefaultModel.Resolve() : throw new VitSharpException("--checkpoint is required"));

    public LoadOptions Load(ParseResult r) => new()
    {
        ImageSize = r.GetValue(ImageSize),
        Heads = r.GetValue(Heads),
        DimHead = r.GetValue(DimHead),
        Pool = r.GetValue(Pool) switch
        {
            null => null,
            "gap" => Pooling.Avg,
            var p => VitConfig.ParsePool(p),
        },
        Gelu = ConfigInference.ParseGelu(r.GetValue(Gelu)),
        LayerNormEps = r.GetValue(LayerNormEps),
        DynamicImgSize = r.GetValue(DynamicImgSize) ? true : null,
        NameMap = r.GetValue(NameMap) is { } map ? VitSharp.Checkpoints.NameMap.Read(map) : null,
        AllowNonFinite = r.GetValue(AllowNonFinite),
    };

    /// <summary>--dtype f32|int8|fp8 of the inference commands (run, classify, serve, eval): int8 quantises the blocks'
    /// Linear layers on load, fp8 calibrates them on --calibration images (docs/QUANTIZATION.md); a quantised checkpoint
    /// runs as it is stored either way (<see cref="Inference.InferenceDType"/>).</summary>
    public Option<string> InferenceDType { get; } = new("--dtype")
    {
        Description = "f32 (default; bf16 compute on CUDA), int8 (CPU: int8 weights and per-token activations in the blocks' Linear layers; a quantised file is int8 anyway) " +
            "or fp8 (CUDA: E4M3 products with per-tensor scales, calibrated on --calibration images, or an FP8 file's own; an FP8 file runs FP8 on a capable GPU anyway)",
        DefaultValueFactory = _ => "f32",
    };

    /// <summary>--calibration: the images whose activations set FP8 input scales (--dtype fp8 with a floating-point checkpoint; vit quantize --dtype fp8).</summary>
    public Option<string?> Calibration { get; } = new("--calibration")
    {
        Description = "--dtype fp8: images (folder or archive; its train split when it has one) whose activations set the FP8 scales (--calibration-images of them)",
    };

    public Option<int> CalibrationImages { get; } = new("--calibration-images")
    {
        Description = $"how many --calibration images set the FP8 scales (default {VitSharp.Inference.Fp8Calibration.DefaultImages})",
        DefaultValueFactory = _ => VitSharp.Inference.Fp8Calibration.DefaultImages,
    };

    /// <summary>--calibration-images, checked positive.</summary>
    public int CalibrationImageCount(ParseResult r) =>
        r.GetValue(CalibrationImages) is > 0 and var n ? n : throw new VitSharpException($"--calibration-images must be positive, not {r.GetValue(CalibrationImages)}");

    /// <summary>--dtype with its FP8 companions --calibration and --calibration-images.</summary>
    public void AddDType(Command command)
    {
        command.Options.Add(InferenceDType);
        AddCalibration(command);
    }

    public void AddCalibration(Command command)
    {
        command.Options.Add(Calibration);
        command.Options.Add(CalibrationImages);
    }

    public DType? DType(ParseResult r) => (r.GetValue(InferenceDType) ?? "f32").ToLowerInvariant() switch
    {
        "f32" or "fp32" => null,
        "int8" or "i8" => Tensors.DType.I8,
        "fp8" or "e4m3" => Tensors.DType.F8E4M3,
        var other => throw new VitSharpException($"--dtype must be f32, int8 or fp8, not '{other}'"),
    };

    public IBackend Backend(ParseResult r) => Backends.Create(Tensors.Device.Parse(Backends.ResolveDevice(r.GetValue(Device))));
}

/// <summary>
/// The options every command spells the same way: <c>-c/--checkpoint</c>, <c>-d/--device</c>, <c>-b/--batch-size</c>,
/// <c>-o/--output</c>. <c>-c</c> always means <c>--checkpoint</c>; a training configuration is <c>-C/--config</c>.
/// </summary>
public static class SharedOptions
{
    public static Option<string> Device() =>
        new("--device", "-d") { Description = "cpu (default), cuda[:N], or auto (CUDA when present, else the CPU)", DefaultValueFactory = _ => "cpu" };

    /// <summary>-b/--batch-size; <c>--batch</c> stays an alias where a command had it.</summary>
    public static Option<int> BatchSize(int defaultValue, string description = "images per forward pass", bool legacyBatch = false)
    {
        var o = new Option<int>("--batch-size", "-b") { Description = description, DefaultValueFactory = _ => defaultValue };
        if (legacyBatch) o.Aliases.Add("--batch");
        return o;
    }
}

public static class Backends
{
    /// <summary>A --device value with <c>auto</c> resolved: <c>cuda</c> when a CUDA device is usable, else <c>cpu</c>.</summary>
    public static string ResolveDevice(string? device) =>
        device is null ? "cpu"
        : device.Equals("auto", StringComparison.OrdinalIgnoreCase) ? (VitSharp.Backends.Cuda.CudaBackend.IsAvailable(out _) ? "cuda" : "cpu")
        : device;

    /// <summary>A training backend: the CPU (fp32), or CUDA computing in <paramref name="dtype"/> (bf16 mixed precision or f32).</summary>
    public static ITrainingBackend CreateTraining(string device, string dtype)
    {
        var d = Tensors.Device.Parse(ResolveDevice(device));
        var t = dtype.ToLowerInvariant() switch
        {
            "bf16" => Tensors.DType.BF16,
            "f32" or "fp32" => Tensors.DType.F32,
            _ => throw new VitSharpException($"--dtype must be bf16 or f32, not '{dtype}'"),
        };
        if (d.IsCpu)
        {
            if (t != Tensors.DType.F32) throw new VitSharpException("the CPU trains in f32 only (--dtype f32)");
            return CpuBackend.Instance;
        }
        return VitSharp.Backends.Cuda.CudaBackend.Create(d, t);
    }

    /// <summary>The backend for a device.</summary>
    public static IBackend Create(Device device)
    {
        if (device.IsCpu) return CpuBackend.Instance;
        return VitSharp.Backends.Cuda.CudaBackend.Create(device);
    }
}

public static class Cli
{
    /// <summary>Runs a command body: user errors become one line on stderr and exit code 1, never a stack trace.</summary>
    public static int Guard(Func<int> body)
    {
        try { return body(); }
        catch (VitSharpException e) { return Fail(e.Message); }
        catch (FileNotFoundException e) { return Fail(e.Message); }
        catch (DirectoryNotFoundException e) { return Fail(e.Message); }
        catch (UnauthorizedAccessException e) { return Fail(e.Message); }
        catch (IOException e) { return Fail(e.Message); }
    }

    /// <summary>One image's ranked labels as the JSON object `classify --json` and `zeroshot --json` print.</summary>
    public static System.Text.Json.Nodes.JsonObject TopJson(string file, IEnumerable<(int Index, string? Label, float Probability, float Logit)> top) => new()
    {
        ["image"] = file,
        ["top"] = new System.Text.Json.Nodes.JsonArray(top.Select(p => (System.Text.Json.Nodes.JsonNode)new System.Text.Json.Nodes.JsonObject
        {
            ["index"] = p.Index, ["label"] = p.Label, ["probability"] = p.Probability, ["logit"] = p.Logit,
        }).ToArray()),
    };

    /// <summary>One line on stderr for an image file that did not decode (batch commands go on with the rest).</summary>
    public static void ReportFileError(VitSharp.Inference.ImageFileError error) => Console.Error.WriteLine("error: " + error.Message);

    /// <summary>The closing line of a batch command some of whose files failed; the exit code (1 when any failed).</summary>
    public static int BatchExitCode(int failed, int total)
    {
        if (failed > 0) Console.Error.WriteLine($"error: {failed} of {total} images could not be read");
        return failed > 0 ? 1 : 0;
    }

    private static int Fail(string message)
    {
        Console.Error.WriteLine("error: " + message.Replace('\n', ' '));
        return 1;
    }
}
