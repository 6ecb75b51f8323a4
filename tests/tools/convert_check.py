"""Loads the files VitSharp's CheckpointWriter wrote with the libraries they are for (timm strict, transformers
from_pretrained with loading info, timm's own Google-npz loader, a torch Google-layout Mixer) and compares their
outputs with the stored references (1e-4). On a machine with torch, timm and transformers (the GPU machine has them):
  VITSHARP_CONVERT_CHECK_DIR=$PWD/convert-check dotnet test tests/VitSharp.Tests -c Release --filter WritesTheLibraryCheckFiles
  python3 tests/tools/convert_check.py convert-check      # from the repository root; prints ALL OK or the failures"""
import json, functools, sys, numpy as np, torch, timm, transformers as T
from torch import nn
from safetensors.torch import load_file
from timm.models.vision_transformer import VisionTransformer, _load_weights
from timm.models.deit import VisionTransformerDistilled
D = "tests/VitSharp.Tests/Data"; C = sys.argv[1] if len(sys.argv) > 1 else "convert-check"; F = f"{D}/refs-families"; S = f"{D}/refs-small"
torch.set_grad_enabled(False)
worst = {}; bad = []
def npy(p): return torch.from_numpy(np.load(p))
def cmp(tag, a, b, tol=1e-4):
    d = float((torch.as_tensor(a) - torch.as_tensor(b)).abs().max()); worst[tag] = d
    print(f"{tag}: max|d| {d:.3g}", "OK" if d <= tol else "FAIL"); (d <= tol) or bad.append(tag)
def strict(m, path):
    m.load_state_dict(load_file(path), strict=True); return m.eval()
base = dict(img_size=32, patch_size=8, embed_dim=48, depth=2, num_heads=2, num_classes=5)
cases = {
    "deit_distilled": (VisionTransformerDistilled, {}),
    "vit_reg4": (VisionTransformer, dict(reg_tokens=4, no_embed_class=True)),
    "vit_layerscale_qknorm": (VisionTransformer, dict(init_values=0.1, qk_norm=True)),
    "vit_clip_quickgelu": (VisionTransformer, dict(pre_norm=True, norm_layer=functools.partial(nn.LayerNorm, eps=1e-5), act_layer="quick_gelu")),
    "vit_siglip_map": (VisionTransformer, dict(class_token=False, global_pool="map", act_layer="gelu_tanh")),
    "vit_dinov2_reg": (VisionTransformer, dict(init_values=1e-5, reg_tokens=4, no_embed_class=True, dynamic_img_size=True)),
    "vit_avg_nocls": (VisionTransformer, dict(class_token=False, global_pool="avg")),
    "vit_no_qkv_bias_relu": (VisionTransformer, dict(qkv_bias=False, act_layer="relu", mlp_ratio=3.0)),
}
def run(tag, fn):
    try: fn()
    except Exception as e: print(f"{tag}: ERROR {type(e).__name__}: {e}"); bad.append(tag)
# 1. timm files into timm models, strict
for n, (cls, kw) in cases.items():
    def f(n=n, cls=cls, kw=kw):
        m = strict(cls(**base, **kw), f"{C}/timm_{n}.safetensors"); x = npy(f"{F}/{n}/input.npy")
        cmp(f"timm strict {n} logits", m(x), npy(f"{F}/{n}/logits.npy"))
    run(n, f)
def f():
    m = strict(VisionTransformer(img_size=48, patch_size=16, embed_dim=64, depth=2, num_heads=2, num_classes=10), f"{C}/timm_vit_tiny48_from_npz.safetensors")
    cmp("timm strict vit_tiny48 (from npz)", m(npy(f"{S}/vit_tiny48/input.npy")), npy(f"{S}/vit_tiny48/logits.npy"))
run("tiny48", f)
hb = dict(base, num_classes=0)
def f():
    m = strict(VisionTransformer(**hb, init_values=0.1), f"{C}/timm_hf_dinov2.safetensors"); x = npy(f"{F}/hf_dinov2/input.npy")
    cmp("timm strict hf_dinov2 features", m.forward_features(x), npy(f"{F}/hf_dinov2/last_hidden_state.npy"))
run("hfdino", f)
def f():
    m = strict(VisionTransformer(**hb, pre_norm=True, norm_layer=functools.partial(nn.LayerNorm, eps=1e-5), act_layer="quick_gelu"), f"{C}/timm_hf_clip_vision.safetensors")
    x = npy(f"{F}/hf_clip_vision/input.npy"); cmp("timm strict hf_clip pooled", m(x), npy(f"{F}/hf_clip_vision/pooler_output.npy"))
run("hfclip", f)
def f():
    m = strict(VisionTransformer(**hb, class_token=False, global_pool="map", act_layer="gelu_tanh"), f"{C}/timm_hf_siglip_vision.safetensors")
    x = npy(f"{F}/hf_siglip_vision/input.npy"); cmp("timm strict hf_siglip pooled", m(x), npy(f"{F}/hf_siglip_vision/pooler_output.npy"))
    cmp("timm strict hf_siglip features", m.forward_features(x), npy(f"{F}/hf_siglip_vision/last_hidden_state.npy"))
run("hfsiglip", f)
def f():
    m = strict(VisionTransformerDistilled(**base, norm_layer=functools.partial(nn.LayerNorm, eps=1e-12)), f"{C}/timm_hf_deit_teacher.safetensors")
    cmp("timm strict hf_deit logits", m(npy(f"{F}/hf_deit_teacher/input.npy")), npy(f"{F}/hf_deit_teacher/logits.npy"))
run("hfdeit", f)
# 2. Hugging Face folders with transformers
def hf(cls, d, allow=()):
    m, info = cls.from_pretrained(f"{C}/{d}", output_loading_info=True)
    left = {k: [x for x in v if not any(a in x for a in allow)] for k, v in info.items() if k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    left = {k: v for k, v in left.items() if v}
    print(f"{d}: {cls.__name__} loading info {left or 'clean'}"); left and bad.append(d + " keys")
    return m.eval()
def f():
    m = hf(T.DeiTForImageClassificationWithTeacher, "hf_deit_distilled"); x = npy(f"{F}/deit_distilled/input.npy")
    cmp("hf deit_distilled logits", m(pixel_values=x).logits, npy(f"{F}/deit_distilled/logits.npy"))
run("h1", f)
def f():
    m = hf(T.ViTForImageClassification, "hf_vit_no_qkv_bias_relu"); x = npy(f"{F}/vit_no_qkv_bias_relu/input.npy")
    cmp("hf vit_no_qkv_bias_relu logits", m(pixel_values=x).logits, npy(f"{F}/vit_no_qkv_bias_relu/logits.npy"))
run("h2", f)
def f():
    m = hf(T.ViTForImageClassification, "hf_vit_tiny48_from_npz")
    cmp("hf vit_tiny48 (from npz) logits", m(pixel_values=npy(f"{S}/vit_tiny48/input.npy")).logits, npy(f"{S}/vit_tiny48/logits.npy"))
run("h3", f)
def f():
    m = hf(T.Dinov2WithRegistersModel, "hf_dinov2_reg_headless"); x = npy(f"{F}/vit_dinov2_reg/input.npy")
    cmp("hf dinov2_with_registers last_hidden_state vs timm features", m(pixel_values=x).last_hidden_state, npy(f"{F}/vit_dinov2_reg/features.npy"))
run("h4", f)
def f():
    m = hf(T.Dinov2WithRegistersModel, "hf_reg4_headless"); x = npy(f"{F}/vit_reg4/input.npy")
    cmp("hf reg4 (gammas 1) last_hidden_state vs timm features", m(pixel_values=x).last_hidden_state, npy(f"{F}/vit_reg4/features.npy"))
run("h5", f)
def f():
    m = hf(T.SiglipVisionModel, "hf_siglip_map_headless"); x = npy(f"{F}/vit_siglip_map/input.npy"); o = m(pixel_values=x)
    cmp("hf siglip last_hidden_state vs timm features", o.last_hidden_state, npy(f"{F}/vit_siglip_map/features.npy"))
    t = VisionTransformer(**base, class_token=False, global_pool="map", act_layer="gelu_tanh"); t.load_state_dict(load_file(f"{F}/vit_siglip_map/model.safetensors")); t.eval()
    cmp("hf siglip pooler vs timm pre-logits", o.pooler_output, t.forward_head(t.forward_features(x), pre_logits=True))
run("h6", f)
def f():
    m = hf(T.CLIPVisionModel, "hf_clip_headless"); x = npy(f"{F}/vit_clip_quickgelu/input.npy")
    cmp("hf clip pooler vs timm features[:,0]", m(pixel_values=x).pooler_output, npy(f"{F}/vit_clip_quickgelu/features.npy")[:, 0])
run("h7", f)
for cls, n, outs in ((T.Dinov2Model, "hf_dinov2", ("last_hidden_state", "pooler_output")), (T.CLIPVisionModel, "hf_clip_vision", ("last_hidden_state", "pooler_output")),
                     (T.SiglipVisionModel, "hf_siglip_vision", ("last_hidden_state", "pooler_output")), (T.DeiTForImageClassificationWithTeacher, "hf_deit_teacher", ("logits",))):
    def f(cls=cls, n=n, outs=outs):
        m = hf(cls, f"hf_{n}_again"); o = m(pixel_values=npy(f"{F}/{n}/input.npy"))
        for k in outs: cmp(f"hf {n} again {k}", getattr(o, k), npy(f"{F}/{n}/{k}.npy"))
    run(n, f)
# 3. Google npz: timm's own loader, and a Google-layout Mixer written from the npz names
def f():
    m = VisionTransformer(img_size=48, patch_size=16, embed_dim=64, depth=2, num_heads=2, num_classes=10); _load_weights(m, f"{C}/npz_vit_tiny48.npz"); m.eval()
    cmp("npz vit_tiny48 via timm _load_weights", m(npy(f"{S}/vit_tiny48/input.npy")), npy(f"{S}/vit_tiny48/logits.npy"))
    m2 = VisionTransformer(img_size=48, patch_size=16, embed_dim=64, depth=2, num_heads=2, num_classes=10, norm_layer=functools.partial(nn.LayerNorm, eps=1e-12)); _load_weights(m2, f"{C}/npz_vit_tiny48_from_hf.npz"); m2.eval()
    cmp("npz vit_tiny48 (from hf) via timm _load_weights", m2(npy(f"{S}/vit_tiny48/input.npy")), npy(f"{S}/vit_tiny48/hf/logits.npy"))
run("npz", f)
def f():
    w = {k: torch.from_numpy(v) for k, v in np.load(f"{C}/npz_mixer_tiny48.npz").items()}
    x = npy(f"{S}/mixer_tiny48/input.npy")
    ln = lambda t, p: nn.functional.layer_norm(t, t.shape[-1:], w[p + "/scale"], w[p + "/bias"], 1e-6)
    dense = lambda t, p: t @ w[p + "/kernel"] + w[p + "/bias"]
    mlp = lambda t, p: dense(nn.functional.gelu(dense(t, p + "/Dense_0")), p + "/Dense_1")
    k = w["stem/kernel"]  # HWIO
    y = nn.functional.conv2d(x, k.permute(3, 2, 0, 1), w["stem/bias"], stride=k.shape[0]).flatten(2).transpose(1, 2)
    i = 0
    while f"MixerBlock_{i}/LayerNorm_0/scale" in w:
        b = f"MixerBlock_{i}"
        y = y + mlp(ln(y, b + "/LayerNorm_0").transpose(1, 2), b + "/token_mixing").transpose(1, 2)
        y = y + mlp(ln(y, b + "/LayerNorm_1"), b + "/channel_mixing"); i += 1
    logits = dense(ln(y, "pre_head_layer_norm").mean(1), "head")
    cmp("npz mixer_tiny48 via a Google-layout Mixer", logits, npy(f"{S}/mixer_tiny48/logits.npy"))
run("mixer", f)
print("versions", torch.__version__, timm.__version__, T.__version__)
print("FAILED:" if bad else "ALL OK", bad)
sys.exit(1 if bad else 0)
