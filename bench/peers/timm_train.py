"""timm training peer for `vit bench-train`: same models and batch sizes, synthetic data already on the GPU.

One step = forward under torch.autocast(bfloat16), cross-entropy (label smoothing 0.1), backward, global-norm clipping
at 1.0, fused AdamW (lr 1e-3, wd 0.05) — AMP as users run it: fp32 master weights, bf16 matrix work. `compiled` wraps
the model in torch.compile (default mode). Timing: CUDA events around `--steps` steps after `--warmup`, median of rounds.
Prints `RESULT timm-<mode> <model> batch=<b> ms/step=… images/s=…`.
usage: python3 timm_train.py vit_base_patch16_224:128 vit_small_patch16_224:256 cifar:512 [--compile]
"""
import argparse, statistics, time
import torch, timm
from timm.models.vision_transformer import VisionTransformer

p = argparse.ArgumentParser()
p.add_argument("cases", nargs="+", help="model:batch (model 'cifar': 32x32, patch 4, width 192, depth 9, 3 heads, 10 classes)")
p.add_argument("--compile", action="store_true")
p.add_argument("--eager", action="store_true", default=True)
p.add_argument("--steps", type=int, default=20)
p.add_argument("--rounds", type=int, default=3)
p.add_argument("--warmup", type=int, default=5)
p.add_argument("--compile-budget-s", type=float, default=300)
a = p.parse_args()
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
t_start = time.time()


def make(name):
    if name == "cifar":
        return VisionTransformer(img_size=32, patch_size=4, embed_dim=192, depth=9, num_heads=3, num_classes=10), 32, 10
    m = timm.create_model(name, pretrained=False, num_classes=1000)
    return m, m.default_cfg["input_size"][-1], 1000


def run(name, batch, compiled):
    torch.manual_seed(0)
    model, size, classes = make(name)
    model = model.cuda().train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05, fused=True)
    fwd = torch.compile(model) if compiled else model
    crit = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    x = torch.randn(batch, 3, size, size, device="cuda")
    y = torch.randint(0, classes, (batch,), device="cuda")

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = crit(fwd(x), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    for _ in range(a.warmup):
        step()
    torch.cuda.synchronize()
    times = []
    for _ in range(a.rounds):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        for _ in range(a.steps):
            step()
        e.record()
        torch.cuda.synchronize()
        times.append(s.elapsed_time(e) / a.steps)
    ms = statistics.median(times)
    mode = "compiled" if compiled else "eager"
    print(f"RESULT timm-{mode} {name} batch={batch} ms/step={ms:.3f} images/s={batch * 1000 / ms:.0f}", flush=True)
    del model, opt, fwd
    torch.cuda.empty_cache()


print(f"device {torch.cuda.get_device_name()} torch {torch.__version__} timm {timm.__version__}", flush=True)
for c in a.cases:
    name, b = c.rsplit(":", 1)
    run(name, int(b), False)
if a.compile:
    for c in a.cases:
        if time.time() - t_start > a.compile_budget_s:
            print(f"SKIP compiled {c}: budget", flush=True)
            continue
        name, b = c.rsplit(":", 1)
        run(name, int(b), True)
