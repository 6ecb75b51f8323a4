# Exports timm ViT-S/16 and ViT-B/16 to ONNX (opset 17, fp32, 224x224, dynamic batch) for the ONNX Runtime CPU peer.
# Weights are a constant (0.01): timing does not depend on values, and constant initializers gzip to almost nothing,
# so the files fit through the device tool's 16 MiB limit. Constant folding is off so the graph stays a real ViT.
# Run on a machine with torch + timm + onnx: python3 export_onnx.py [out_dir]
import gzip, os, shutil, sys, time
import torch, timm

out = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("OUT", ".")
print("torch", torch.__version__, "timm", timm.__version__, flush=True)

def export(name):
    model = timm.create_model(name, pretrained=False).eval()
    for p in model.parameters():
        p.data.fill_(0.01)
    x = torch.randn(1, 3, 224, 224)
    path = os.path.join("/tmp", name + ".onnx")
    t = time.time()
    try:
        torch.onnx.export(model, (x,), path, opset_version=17, dynamo=False, do_constant_folding=False,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
        how = "torchscript exporter"
    except Exception as e:  # the legacy exporter may be gone in this torch; fall back to dynamo
        print("legacy export failed:", repr(e)[:300], flush=True)
        batch = torch.export.Dim("batch", min=1, max=256)
        prog = torch.onnx.export(model, (x,), dynamo=True, opset_version=17, optimize=False,
                                 input_names=["input"], output_names=["logits"], dynamic_shapes=({0: batch},))
        prog.save(path)
        how = "dynamo exporter"
    print(f"{name}: exported with {how} in {time.time() - t:.1f}s, {os.path.getsize(path) / 1e6:.1f} MB", flush=True)
    check(path, model)
    with open(path, "rb") as f, gzip.open(os.path.join(out, name + ".onnx.gz"), "wb", compresslevel=6) as g:
        shutil.copyfileobj(f, g)
    print(f"{name}: gz {os.path.getsize(os.path.join(out, name + '.onnx.gz')) / 1e6:.2f} MB", flush=True)

def check(path, model):
    # The exported graph must agree with PyTorch at batch 1 and 16 (random input).
    try:
        import onnxruntime as ort
    except ImportError:
        print("no onnxruntime here; skipped check"); return
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    for b in (1, 16):
        x = torch.randn(b, 3, 224, 224)
        with torch.no_grad():
            ref = model(x).numpy()
        got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
        print(f"  batch {b}: shape {got.shape}, max |ort - torch| = {abs(got - ref).max():.3g}", flush=True)

for name in ("vit_small_patch16_224", "vit_base_patch16_224"):
    export(name)
