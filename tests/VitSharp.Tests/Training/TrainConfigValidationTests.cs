using VitSharp.Training;

namespace VitSharp.Tests.Training;

/// <summary>Issue 10's config rows: unknown keys (with a suggestion), out-of-range values and --set type errors are one
/// line naming the key (and the --set that gave it).</summary>
public class TrainConfigValidationTests
{
    private static string Fails(string json, params string[] sets)
    {
        var e = Assert.ThrowsAny<VitSharpException>(() => TrainConfig.Parse(json, sets, "run.json"));
        Assert.DoesNotContain('\n', e.Message);
        return e.Message;
    }

    [Fact]
    public void UnknownModelKeyIsRefusedWithASuggestion() =>
        Assert.Equal("--set model.embed_dimm=32: unknown key 'model.embed_dimm' (did you mean 'model.embed_dim'?)", Fails("{}", "model.embed_dimm=32"));

    [Fact]
    public void UnknownKeysAnywhereAreRefused()
    {
        Assert.Equal("run.json: unknown key 'optimizer.learning_rate'", Fails("""{"optimizer": {"learning_rate": 0.1}}"""));
        Assert.Equal("run.json: unknown key 'epoch' (did you mean 'epochs'?)", Fails("""{"epoch": 3}"""));
        Assert.Equal("--set data.worker=2: unknown key 'data.worker' (did you mean 'data.workers'?)", Fails("{}", "data.worker=2"));
    }

    [Theory]
    [InlineData("optimizer.lr=-0.01", "'optimizer.lr' is -0.01; it must be > 0")]
    [InlineData("optimizer.lr=0", "'optimizer.lr' is 0; it must be > 0")]
    [InlineData("label_smoothing=2", "'label_smoothing' is 2; it must be in [0, 1)")]
    [InlineData("drop_path_rate=1.5", "'drop_path_rate' is 1.5; it must be in [0, 1)")]
    [InlineData("ema_decay=2", "'ema_decay' is 2; it must be in [0, 1) (0: off)")]
    [InlineData("epochs=-1", "'epochs' is -1; it must be ≥ 1")]
    [InlineData("epochs=0", "'epochs' is 0; it must be ≥ 1")]
    [InlineData("data.workers=-3", "'data.workers' is -3")]
    [InlineData("batch_size=0", "'batch_size' is 0; it must be ≥ 1")]
    public void OutOfRangeValuesNameTheKeyAndTheSet(string set, string expected)
    {
        var m = Fails("{}", set);
        Assert.StartsWith($"--set {set}: ", m);
        Assert.Contains(expected, m);
    }

    [Fact]
    public void OutOfRangeValuesInTheFileNameTheFile() =>
        Assert.StartsWith("run.json: 'optimizer.lr' is -1", Fails("""{"optimizer": {"lr": -1}}"""));

    [Fact]
    public void SetTypeErrorsNameTheKeyAndTheValueNotALine()
    {
        Assert.Equal("--set model.depth=abc: 'model.depth' must be an integer, not \"abc\"", Fails("{}", "model.depth=abc"));
        Assert.Equal("--set optimizer.lr=abc: 'optimizer.lr' must be a number, not \"abc\"", Fails("{\n\n\"epochs\": 2}", "optimizer.lr=abc"));
        Assert.Equal("--set model.qkv_bias=3: 'model.qkv_bias' must be true or false, not 3", Fails("{}", "model.qkv_bias=3"));
    }

    [Fact]
    public void ValidConfigsStillParse()
    {
        var c = TrainConfig.Parse("""{"model": {"architecture": "vit", "embed_dim": 64, "depth": 2, "num_heads": 2}, "epochs": 1}""",
            ["optimizer.lr=0.01", "ema_decay=0.999", "label_smoothing=0"]);
        Assert.Equal(0.01f, c.Optimizer.Lr);
        Assert.Equal(64, c.BuildModelConfig().EmbedDim);
    }

    [Fact]
    public void HostileValuesForEveryKeyGiveTypedErrors()
    {
        var defaults = System.Text.Json.Nodes.JsonNode.Parse(new TrainConfig().ToJson())!.AsObject();
        var keys = new List<string>();
        foreach (var (k, v) in defaults)
            if (v is System.Text.Json.Nodes.JsonObject o && k != "model") keys.AddRange(o.Select(kv => $"{k}.{kv.Key}"));
            else keys.Add(k);
        keys.AddRange(TrainConfig.ModelKeys.Select(k => "model." + k));
        string[] values = ["abc", "-1", "0", "null", "[]", "{}", "1e308", "true", "2.5", "-2147483649", "NaN"];
        foreach (var key in keys)
            foreach (var v in values)
            {
                try { TrainConfig.Parse("{}", [$"{key}={v}"], "run.json").BuildModelConfig(); }
                catch (VitSharpException e) { Assert.DoesNotContain('\n', e.Message); }
                catch (Exception e) { Assert.Fail($"{key}={v}: {e.GetType().Name}: {e.Message}"); }
            }
    }
}
