"""Accuracy-vs-seconds curve of `vit train` runs from their log.jsonl files (eval events carry wall_s and top1).
usage: python3 plot_curve.py OUT.png LABEL=log.jsonl [LABEL=log.jsonl ...]   (matplotlib: apt-get install python3-matplotlib)"""
import json, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

out, runs = sys.argv[1], sys.argv[2:]
fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
for r in runs:
    label, path = r.split("=", 1)
    ev = [json.loads(l) for l in open(path) if '"kind":"eval"' in l]
    ax.plot([e["wall_s"] for e in ev], [100 * e["top1"] for e in ev], label=f"{label} (final {100 * ev[-1]['top1']:.1f} %)")
ax.axhline(90, color="gray", ls="--", lw=0.8)
ax.axvline(480, color="gray", ls=":", lw=0.8)
ax.text(482, 40, "8 min", color="gray", fontsize=8)
ax.set_xlabel("seconds of training (one H200, data loading included after the decode-once cache)")
ax.set_ylabel("CIFAR-10 test top-1 (%)")
ax.set_title("VitSharp: CIFAR-10 from scratch, ViT 32²/4, width 192, depth 9, bf16")
ax.grid(alpha=0.3)
ax.legend(fontsize=8, loc="lower right")
fig.tight_layout()
fig.savefig(out)
