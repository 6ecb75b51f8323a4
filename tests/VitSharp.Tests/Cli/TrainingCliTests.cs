using VitSharp.Checkpoints;
using VitSharp.Tests.Training;
using VitSharp.Training;

namespace VitSharp.Tests.Cli;

/// <summary>`vit train`, `vit eval` and `vit finetune` end to end on a tiny synthetic archive (no ../shared needed).</summary>
[Collection("cli")]
public class TrainingCliTests : IDisposable
{
    private readonly string _tmp = Directory.CreateTempSubdirectory("vitsharp-cli-train-").FullName;

    public void Dispose() => Directory.Delete(_tmp, recursive: true);

    [Fact]
    public void TrainEvalFinetune()
    {
        var data = DataTests.MakeArchive(gzip: true); // train/ and test/, 3 classes × 4 images of 8×8
        var config = Path.Combine(_tmp, "tiny.json");
        File.WriteAllText(config, """
            {
              "model": { "architecture": "vit", "img_size": 8, "patch_size": 4, "embed_dim": 8, "depth": 1, "num_heads": 2, "mlp_dim": 16 },
              "batch_size": 4, "epochs": 2, "log_every_steps": 1
            }
            """);
        var run = Path.Combine(_tmp, "run");
        var (code, stdout, err) = CliRunner.Run("train", "--config", config, "--data", data, "--output", run);
        Assert.True(code == 0, err);
        Assert.Contains("done: 6 steps", stdout);
        var log = File.ReadAllLines(Path.Combine(run, Trainer.LogFile));
        Assert.Equal(6, log.Count(l => l.Contains("\"kind\":\"step\"")));
        Assert.Equal(2, log.Count(l => l.Contains("\"kind\":\"eval\"")));
        var model = Path.Combine(run, Trainer.ModelFile);
        Assert.Equal(["cat", "dog", "emu"], Checkpoint.Load(model).Labels!);

        (code, stdout, err) = CliRunner.Run("eval", "--checkpoint", model, "--data", data);
        Assert.True(code == 0, err);
        Assert.Contains("images 12", stdout);
        Assert.Contains("top-1", stdout);

        var ft = Path.Combine(_tmp, "ft");
        (code, stdout, err) = CliRunner.Run("finetune", "--checkpoint", model, "--data", data, "--img-size", "16", "--classes", "3",
            "--output", ft, "--set", "epochs=1", "--set", "batch_size=4", "--set", "data.val_split=test");
        Assert.True(code == 0, err);
        var tuned = Checkpoint.Load(Path.Combine(ft, Trainer.ModelFile));
        Assert.Equal(16, tuned.Config.ImageSize);
        Assert.Equal([1, 17, 8], tuned.Weights["pos_embed"].Shape);

        (code, _, err) = CliRunner.Run("finetune", "--checkpoint", model, "--data", data, "--classes", "5", "--output", ft,
            "--set", "data.val_split=test");
        Assert.Equal(1, code);
        Assert.Contains("--classes 5 but the data has 3 classes", err);
        (code, _, err) = CliRunner.Run("finetune", "--checkpoint", model, "--data", data, "--output", ft); // no val/ in it
        Assert.Equal(1, code);
        Assert.Contains("no images under val/", err);
    }

    /// <summary>`vit bench-train -C CONFIG` times the model of a training config (here a tiny conv-tokenizer ViT) and
    /// says so; a config with an unknown model key is a one-line error.</summary>
    [Fact]
    public void BenchTrainTakesATrainingConfigsModel()
    {
        var config = Path.Combine(_tmp, "bench.json");
        File.WriteAllText(config, """
            { "model": { "architecture": "vit", "img_size": 8, "patch_size": 2, "embed_dim": 8, "depth": 1, "num_heads": 2, "mlp_dim": 16,
                         "conv_tokenizer": { "layers": 1, "channels": 4 } } }
            """);
        var (code, stdout, err) = CliRunner.Run("bench-train", "-C", config, "--batch", "4", "--steps", "2", "--rounds", "1");
        Assert.True(code == 0, err);
        Assert.Matches(@"RESULT vitsharp-f32 bench batch=4 ms/step=[0-9.]+ images/s=[0-9]+ loss [0-9.]+ -> [0-9.]+", stdout);
        File.WriteAllText(config, """{ "model": { "architecture": "vit", "img_size": 8, "patch_size": 2, "colour": 1 } }""");
        (code, _, err) = CliRunner.Run("bench-train", "-C", config);
        Assert.Equal(1, code);
        Assert.Contains("colour", err);
        Assert.DoesNotContain("   at ", err);
    }

    /// <summary>A ViT with CCT's convolutional tokenizer through the CLI: train at 8×8 (one layer, stride 2: 4×4 tokens),
    /// eval, then `vit finetune --img-size 16` (8×8 tokens, the position embedding resampled) and classify with it.</summary>
    [Fact]
    public void ConvTokenizerTrainEvalFinetuneAtTwiceTheSize()
    {
        var data = DataTests.MakeArchive(gzip: true);
        var config = Path.Combine(_tmp, "cct.json");
        File.WriteAllText(config, """
            {
              "model": { "architecture": "vit", "img_size": 8, "patch_size": 2, "embed_dim": 8, "depth": 1, "num_heads": 2, "mlp_dim": 16,
                         "conv_tokenizer": { "layers": 1, "channels": 4 } },
              "batch_size": 4, "epochs": 2, "log_every_steps": 1
            }
            """);
        var run = Path.Combine(_tmp, "cct-run");
        var (code, stdout, err) = CliRunner.Run("train", "--config", config, "--data", data, "--output", run);
        Assert.True(code == 0, err);
        Assert.Contains("done: 6 steps", stdout);
        var model = Path.Combine(run, Trainer.ModelFile);
        var trained = Checkpoint.Load(model);
        Assert.Equal(1, ((VitSharp.Models.VitConfig)trained.Config).ConvTokenizer!.Layers);
        Assert.Equal([8, 3, 3, 3], trained.Weights["tokenizer.conv_layers.0.0.weight"].Shape);
        (code, stdout, err) = CliRunner.Run("eval", "--checkpoint", model, "--data", data);
        Assert.True(code == 0, err);
        Assert.Contains("images 12", stdout);

        var ft = Path.Combine(_tmp, "cct-ft");
        (code, _, err) = CliRunner.Run("finetune", "--checkpoint", model, "--data", data, "--img-size", "16", "--classes", "3",
            "--output", ft, "--set", "epochs=1", "--set", "batch_size=4", "--set", "data.val_split=test");
        Assert.True(code == 0, err);
        var tuned = Checkpoint.Load(Path.Combine(ft, Trainer.ModelFile));
        Assert.Equal(16, tuned.Config.ImageSize);
        Assert.Equal([1, 8 * 8 + 1, 8], tuned.Weights["pos_embed"].Shape);
        Assert.Equal(((VitSharp.Models.VitConfig)trained.Config).ConvTokenizer, ((VitSharp.Models.VitConfig)tuned.Config).ConvTokenizer);
        (code, stdout, err) = CliRunner.Run("info", "--checkpoint", Path.Combine(ft, Trainer.ModelFile));
        Assert.True(code == 0, err);
        Assert.Contains("conv_tokenizer", stdout);
    }

    [Fact]
    public void TrainWithTeacherThenEvalAndClassify()
    {
        var data = DataTests.MakeArchive(gzip: true);
        var config = Path.Combine(_tmp, "tiny.json");
        File.WriteAllText(config, """
            {
              "model": { "architecture": "vit", "img_size": 8, "patch_size": 4, "embed_dim": 8, "depth": 1, "num_heads": 2, "mlp_dim": 16 },
              "batch_size": 4, "epochs": 2, "log_every_steps": 1
            }
            """);
        var teacherRun = Path.Combine(_tmp, "teacher");
        var (code, _, err) = CliRunner.Run("train", "--config", config, "--data", data, "--output", teacherRun);
        Assert.True(code == 0, err);
        var teacher = Path.Combine(teacherRun, Trainer.ModelFile);

        var run = Path.Combine(_tmp, "student");
        string stdout;
        (code, stdout, err) = CliRunner.Run("train", "--config", config, "--data", data, "--output", run, "--teacher", teacher,
            "--distillation", "soft", "--set", "model.dist_token=true", "--set", "distillation.tau=2");
        Assert.True(code == 0, err);
        Assert.Contains($"distilling from {teacher}: soft, alpha 0.5, tau 2; distillation token and head", stdout);
        Assert.Contains("done: 6 steps", stdout);
        var model = Path.Combine(run, Trainer.ModelFile);
        var student = Checkpoint.Load(model);
        Assert.True(((VitSharp.Models.VitConfig)student.Config).DistToken);
        Assert.Contains("head_dist.weight", student.Weights.Keys);

        (code, stdout, err) = CliRunner.Run("eval", "--checkpoint", model, "--data", data);
        Assert.True(code == 0, err);
        Assert.Contains("images 12", stdout);
        (code, stdout, err) = CliRunner.Run("classify", "--checkpoint", model, Repo.At("samples", "chelsea.png"), "--top-k", "3");
        Assert.True(code == 0, err);
        Assert.Contains("chelsea.png", stdout);

        (code, _, err) = CliRunner.Run("train", "--config", config, "--data", data, "--output", Path.Combine(_tmp, "x"),
            "--teacher", Path.Combine(_tmp, "missing.safetensors"));
        Assert.Equal(1, code);
        Assert.Contains("missing.safetensors: teacher checkpoint not found", err);
        Assert.Single(err.Trim().Split('\n'));
        (code, _, err) = CliRunner.Run("train", "--config", config, "--data", data, "--output", Path.Combine(_tmp, "y"), "--distillation", "soft");
        Assert.Equal(1, code);
        Assert.Contains("--distillation needs a teacher", err);
    }

    [Fact]
    public void ShippedConfigsParse()
    {
        var cifar = TrainConfig.Load(CifarTrainingTests.RepoFile("configs", "cifar10_vit_tiny.json"));
        Assert.Equal(10, cifar.BuildModelConfig(10).NumClasses);
        var ft = TrainConfig.Load(CifarTrainingTests.RepoFile("configs", "imagenette_finetune.json"));
        Assert.Equal("sgd", ft.Optimizer.Name);
        Assert.Equal(0.03f, ft.Optimizer.Lr);
        Assert.Throws<VitSharpException>(() => TrainConfig.Parse("""{ "optimiser": {} }"""));

        // The GPU recipes behind the shipped model and the Imagenette model card (docs/MODELS.md).
        var gpu = TrainConfig.Load(CifarTrainingTests.RepoFile("configs", "cifar10_vit_gpu.json"));
        var vit = Assert.IsType<VitSharp.Models.VitConfig>(gpu.BuildModelConfig(10));
        Assert.Equal((192, 9, 3, 384), (vit.EmbedDim, vit.Depth, vit.NumHeads, vit.MlpDim));
        Assert.Equal((256, 310, 0.5f), (gpu.BatchSize, gpu.Epochs, gpu.MixupProb));
        var pre = TrainConfig.Load(CifarTrainingTests.RepoFile("configs", "imagenette_vit_s16_pretrain128.json"));
        Assert.Equal((128, 384, 12), (pre.BuildModelConfig(10).ImageSize, pre.BuildModelConfig(10).EmbedDim, pre.BuildModelConfig(10).Depth));
        var ft224 = TrainConfig.Load(CifarTrainingTests.RepoFile("configs", "imagenette_vit_s16_finetune224.json"));
        Assert.Equal((30, 1e-4f), (ft224.Epochs, ft224.Optimizer.Lr));

        // The distillation pair (bench/peers/gpu_distill_cifar.sh): the same student and recipe, one with a distillation
        // token and DeiT's hard distillation (the teacher given by --teacher).
        var alone = TrainConfig.Load(CifarTrainingTests.RepoFile("configs", "cifar10_student_ti.json"));
        var distilled = TrainConfig.Load(CifarTrainingTests.RepoFile("configs", "cifar10_student_ti_distilled.json"),
            ["distillation.teacher=teacher.safetensors"]);
        var a = Assert.IsType<VitSharp.Models.VitConfig>(alone.BuildModelConfig(10));
        var d = Assert.IsType<VitSharp.Models.VitConfig>(distilled.BuildModelConfig(10));
        Assert.Equal((192, 6, 3, false), (a.EmbedDim, a.Depth, a.NumHeads, a.DistToken));
        Assert.Equal(a with { DistToken = true }, d);
        Assert.Equal(("hard", 0.5f, "teacher.safetensors"), (distilled.Distillation.Type, distilled.Distillation.Alpha, distilled.Distillation.Teacher));
        Assert.Null(alone.Distillation.Teacher);
        Assert.Equal(alone with { Model = distilled.Model, Distillation = distilled.Distillation, Output = distilled.Output, Data = distilled.Data }, distilled);
    }
}
