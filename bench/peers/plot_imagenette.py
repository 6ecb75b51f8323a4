"""Imagenette: pre-training at 128² then fine-tuning at 224² (and, as the control, the same fine-tuning at 128²), val
top-1 against epochs, from the runs' log.jsonl files.
usage: python3 plot_imagenette.py OUT.png PRE.jsonl FT224.jsonl FT128.jsonl   (matplotlib: apt-get install python3-matplotlib)"""
import json, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

out, pre, ft224, ft128 = sys.argv[1:5]
ev = lambda p: [json.loads(l) for l in open(p) if '"kind":"eval"' in l]
p = ev(pre)
n = p[-1]["epoch"] + 1
fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
ax.plot([e["epoch"] + 1 for e in p], [100 * e["top1"] for e in p], label=f"pre-training at 128² (final {100 * p[-1]['top1']:.1f} %)")
for path, label in [(ft224, "fine-tuning at 224²"), (ft128, "control: the same fine-tuning at 128²")]:
    f = ev(path)
    ax.plot([n] + [n + e["epoch"] + 1 for e in f], [100 * p[-1]["top1"]] + [100 * e["top1"] for e in f], label=f"{label} (final {100 * f[-1]['top1']:.1f} %)")
ax.axvline(n, color="gray", ls=":", lw=0.8)
ax.set_xlabel("epoch")
ax.set_ylabel("Imagenette val top-1 (%)")
ax.set_title("VitSharp: ViT-S/16 from scratch on Imagenette, one H200, bf16")
ax.grid(alpha=0.3)
ax.legend(fontsize=8, loc="lower right")
fig.tight_layout()
fig.savefig(out)
