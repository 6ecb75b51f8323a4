using System.Text.Json;

namespace VitSharp.Training;

/// <summary>The run's JSONL log: one object per logged step, evaluation and checkpoint.</summary>
public static class TrainLog
{
    /// <summary>Drops lines past the checkpoint a resumed run continues from, so the log reads as one run
    /// (step 0: a fresh run, the old log goes).</summary>
    public static void Trim(string path, long step)
    {
        if (!File.Exists(path)) return;
        if (step == 0) { File.Delete(path); return; }
        var keep = File.ReadAllLines(path).Where(l =>
        {
            try { return JsonDocument.Parse(l).RootElement.GetProperty("step").GetInt64() <= step; }
            catch (JsonException) { return false; }
        }).ToList();
        File.WriteAllLines(path, keep);
    }

    /// <summary>Appends one event as a JSON object and flushes, so the log survives an interruption.</summary>
    public static void Write(StreamWriter log, TrainEvent e)
    {
        var o = new System.Text.Json.Nodes.JsonObject { ["kind"] = e.Kind, ["step"] = e.Step, ["epoch"] = e.Epoch };
        if (!float.IsNaN(e.Loss)) o["loss"] = e.Loss;
        if (!double.IsNaN(e.Accuracy)) o[e.Kind.StartsWith("eval") ? "top1" : "accuracy"] = e.Accuracy;
        if (e.Eval is not null) { o["top5"] = e.Eval.Top5; o["count"] = e.Eval.Count; }
        if (!float.IsNaN(e.Lr)) o["lr"] = e.Lr;
        if (!double.IsNaN(e.ImagesPerSecond)) o["images_per_s"] = Math.Round(e.ImagesPerSecond, 1);
        if (!float.IsNaN(e.GradNorm)) o["grad_norm"] = e.GradNorm;
        if (e.Path is not null) o["path"] = e.Path;
        if (!double.IsNaN(e.WallSeconds)) o["wall_s"] = e.WallSeconds;
        log.WriteLine(o.ToJsonString());
        log.Flush();
    }
}
