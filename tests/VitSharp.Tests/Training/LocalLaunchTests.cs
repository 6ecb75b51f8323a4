using VitSharp.Tests.Codecs;
using VitSharp.Training.Distributed;

namespace VitSharp.Tests.Training;

/// <summary>`vit train --gpus N`'s launcher: each rank's arguments and environment, rank 0's output forwarded and the
/// others' stderr prefixed, the exit codes, failing fast (a /bin/sh script stands in for the ranks), and the errors of
/// a launch that must not start.</summary>
public class LocalLaunchTests
{
    [Fact]
    public void EachRankGetsTheArgumentsLessGpusAndItsOwnDevice()
    {
        string[] given = ["train", "-C", "c.json", "--gpus", "4", "--set", "epochs=1", "--device", "cuda", "--no-resume"];
        Assert.Equal(["train", "-C", "c.json", "--set", "epochs=1", "--no-resume", "--device", "cuda:2"], LocalLaunch.ChildArguments(given, "cuda", 2));
        Assert.Equal(["train", "-C", "c.json", "--device", "cpu"], LocalLaunch.ChildArguments(["train", "--gpus=2", "-C", "c.json", "-d", "cpu"], "cpu", 1));
        Assert.Equal(["train", "--data", "d", "--device", "cuda:0"], LocalLaunch.ChildArguments(["train", "--gpus:3", "--device=auto", "--data", "d"], "cuda", 0));
    }

    [Fact]
    public void DeviceKinds()
    {
        Assert.Equal("cuda", LocalLaunch.DeviceKind(null));
        Assert.Equal("cuda", LocalLaunch.DeviceKind("CUDA"));
        Assert.Equal("cpu", LocalLaunch.DeviceKind("cpu"));
        Assert.Equal(VitSharp.Backends.Cuda.CudaBackend.IsAvailable(out _) ? "cuda" : "cpu", LocalLaunch.DeviceKind("auto"));
        Assert.Equal("--gpus gives rank r the device cuda:r; pass --device cuda (or cpu), not cuda:1",
            Assert.Throws<VitSharpException>(() => LocalLaunch.DeviceKind("cuda:1")).Message);
        Assert.Equal("--gpus runs on --device cuda, cpu or auto, not 'tpu'", Assert.Throws<VitSharpException>(() => LocalLaunch.DeviceKind("tpu")).Message);
    }

    [Fact]
    public void ALaunchThatMustNotStartIsOneLine()
    {
        Assert.Equal("--gpus must be at least 1, not 0", Assert.Throws<VitSharpException>(() => LocalLaunch.Validate(0, _ => null)).Message);
        var e = Assert.Throws<VitSharpException>(() => LocalLaunch.Validate(2, n => n == "RANK" ? "0" : null));
        Assert.StartsWith("--gpus starts the ranks itself, but RANK/WORLD_SIZE are set", e.Message);
        Assert.Throws<VitSharpException>(() => LocalLaunch.Validate(2, n => n == "WORLD_SIZE" ? "2" : null));
        LocalLaunch.Validate(1, n => n == "RANK" ? "" : null); // empty counts as unset, as in Launch.FromEnvironment
    }

    private static (int Code, string Out, string Err) Sh(int ranks, string script, string device = "cpu")
    {
        var (o, e) = (new StringWriter(), new StringWriter());
        int code = LocalLaunch.Run(new LocalLaunch.Options
        {
            Ranks = ranks, Arguments = ["train", "-C", "c.json", "--gpus", $"{ranks}"], Device = device,
            Command = ("/bin/sh", ["-c", script, "sh"]), Out = o, Error = e, GetEnvironment = _ => null,
        });
        return (code, o.ToString(), e.ToString());
    }

    [NeedsFact(false, "sh")]
    public void RanksGetTheirEnvironmentAndRankZerosOutputComesThrough()
    {
        var (code, stdout, stderr) = Sh(3, """
            echo "rank $RANK/$WORLD_SIZE local $LOCAL_RANK/$LOCAL_WORLD_SIZE at $MASTER_ADDR:$MASTER_PORT args $*"
            echo "note from $RANK" >&2
            exit 0
            """, device: "cuda");
        Assert.Equal(0, code);
        var line = Assert.Single(stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)); // other ranks' stdout is dropped
        Assert.Matches(@"^rank 0/3 local 0/3 at 127\.0\.0\.1:\d+ args train -C c\.json --device cuda:0$", line);
        var errs = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order().ToArray();
        Assert.Equal(["[rank 1] note from 1", "[rank 2] note from 2", "note from 0"], errs);
    }

    [NeedsFact(false, "sh")]
    public void ARankThatFailsStopsTheOthersAndNamesItself()
    {
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var (code, _, stderr) = Sh(2, """
            if [ "$RANK" = 1 ]; then echo "rank 1 broke" >&2; exit 7; fi
            sleep 60
            """);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(30), $"the launch waited {watch.Elapsed.TotalSeconds:F0} s for the sleeping rank 0");
        Assert.Equal(7, code);
        Assert.Contains("[rank 1] rank 1 broke", stderr);
        Assert.EndsWith("error: rank 1 of 2 exited with code 7; stopped the other ranks", stderr.TrimEnd());
    }

    [NeedsFact(false, "sh")]
    public void TheExitCodeIsRankZeros()
    {
        Assert.Equal(5, Sh(2, """if [ "$RANK" = 0 ]; then exit 5; fi; exit 0""").Code);
    }
}
