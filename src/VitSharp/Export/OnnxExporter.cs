using VitSharp.Checkpoints;
using VitSharp.Models;
using VitSharp.Nn;

namespace VitSharp.Export;

/// <summary>
/// Exports a ViT or MLP-Mixer to ONNX (opset 17, float32, dynamic batch) by recording the model's own forward on an
/// <see cref="OnnxRecorder"/>: the graph is the computation inference runs, in standard operators (Conv,
/// LayerNormalization, MatMul, Softmax, Erf), so any ONNX runtime can run it.
/// Output "logits" (B, classes), or "features" (B, F) for a model without a head.
/// </summary>
public static class OnnxExporter
{
    public static void Export(VisionModel model, string path) => AtomicFile.Write(path, s => s.Write(Build(model)));

    public static byte[] Build(VisionModel model)
    {
        var config = model.Config;
        var g = new OnnxGraph();
        using var recorder = new OnnxRecorder(g, model.Parameters, model.Parameters.ToHost());
        g.Input("pixel_values", null, config.InChannels, config.ImageSize, config.ImageSize);
        // Batch 1 while recording; no op names the batch size, so the graph takes any.
        var images = recorder.Input("pixel_values", [1, config.InChannels, config.ImageSize, config.ImageSize]);
        model.CheckInput(images.Shape);
        using var workspace = new Workspace(recorder);
        var result = model.Forward(Pass.Inference(recorder, workspace), images);
        var features = result.Logits ?? result.Pooled;
        string output = result.Logits is null ? "features" : "logits";
        g.Node("Identity", [recorder.Value(features)], output);
        g.Output(output, null, features.Dim(1));
        return g.ToModel("VitSharp", config.Architecture,
            new Dictionary<string, string> { [Checkpoint.ConfigMetadataKey] = config.ToJson().ToJsonString() });
    }
}
