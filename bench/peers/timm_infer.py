"""timm inference peer for `vit bench`: same models, batch sizes and dtype, input already on the GPU.

Prints lines `RESULT timm-<mode> <model> batch=<b> dtype=bf16 ms/batch=… images/s=…` that docs/BENCHMARKS-gpu.md
tabulates next to VitSharp's. Eager runs under torch.autocast(bfloat16) like timm's own benchmark script;
`compiled` is torch.compile(model) (default mode) under the same autocast. Timing: CUDA events, median of rounds.
usage: python3 timm_infer.py vit_base_patch16_224:256 vit_base_patch16_224:1 ... [--compile] [--compile-budget-s 300]
"""
import argparse, statistics, sys, time
import torch, timm

p = argparse.ArgumentParser()
p.add_argument("cases", nargs="+", help="model:batch")
p.add_argument("--compile", action="store_true")
p.add_argument("--compile-budget-s", type=float, default=300, help="skip compiling once this much time is spent")
p.add_argument("--iters", type=int, default=20)
p.add_argument("--rounds", type=int, default=5)
a = p.parse_args()
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
dev = torch.cuda.get_device_name()
t_start = time.time()


def bench(fn, iters, rounds):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(rounds):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        for _ in range(iters):
            fn()
        e.record()
        e.synchronize()
        times.append(s.elapsed_time(e) / iters)
    return statistics.median(times)


for case in a.cases:
    name, batch = case.split(":")
    batch = int(batch)
    model = timm.create_model(name, pretrained=False).cuda().eval()
    x = torch.randn(batch, 3, 224, 224, device="cuda")
    modes = [("eager", model)]
    if a.compile:
        if time.time() - t_start < a.compile_budget_s:
            modes.append(("compiled", torch.compile(model)))
        else:
            print(f"SKIP timm-compiled {name} batch={batch}: compile budget spent", flush=True)
    for mode, m in modes:
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
            t0 = time.time()
            m(x)
            torch.cuda.synchronize()
            first = time.time() - t0
            ms = bench(lambda: m(x), a.iters if batch > 1 else 100, a.rounds)
        print(f"RESULT timm-{mode} {name} batch={batch} dtype=bf16 ms/batch={ms:.3f} images/s={batch * 1000 / ms:.0f} "
              f"first_call_s={first:.1f} device=\"{dev}\"", flush=True)
    del model, modes
    torch.cuda.empty_cache()
