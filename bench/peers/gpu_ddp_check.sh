#!/bin/bash
# Data-parallel check on ONE GPU (issue 14): the same short CIFAR run twice through `vit train`, plain and as a world of
# size 1 over real NCCL (RANK=0 WORLD_SIZE=1: TcpRendezvous + ncclCommInitRank + ncclAllReduce/ncclBroadcast on the
# backend's stream), both with cuda_graphs off (eager; the data-parallel step is always eager), then compares the two
# checkpoints tensor by tensor (expected: identical bytes; NCCL's average over one rank is the identity).
# Runs from the carried folder .gpu/ (as gpu_train_cifar.sh): app/ = self-contained publish output, configs/ = the
# repository's configs, data/cifar10-jpeg.tar.gz = ../shared/datasets/cifar10-jpeg.tar.gz (19 MB). Prepare here:
#   dotnet publish src/VitSharp.Cli -c Release -r linux-x64 --self-contained -p:PublishTrimmed=true -o .gpu/app
#   cp -r configs .gpu/ && mkdir -p .gpu/data && cp ../shared/datasets/cifar10-jpeg.tar.gz .gpu/data/
#   cp bench/peers/gpu_ddp_check.sh .gpu/          (.gpu/ in .git/info/exclude)
# Device command (carry [".gpu"]):  bash .gpu/gpu_ddp_check.sh
# NOT RUN YET (written 2026-12-04 without a GPU).
set -o pipefail
cd "$(dirname "$0")"
export VITSHARP_KERNEL_CACHE=/tmp/vitsharp-kernels
date -u; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
ARGS="-C configs/cifar10_vit_tiny.json --data ${DATA:-data/cifar10-jpeg.tar.gz} --device cuda:0 --dtype f32 --no-resume --set cuda_graphs=false --set max_steps=${STEPS:-20} --set data.train_per_class=200 --set data.val_per_class=20"
timeout 200 ./app/vit train $ARGS -o runs/plain 2>&1 | tail -5 | tee $OUT/plain.log
RANK=0 WORLD_SIZE=1 LOCAL_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=29517 \
  timeout 200 ./app/vit train $ARGS -o runs/nccl1 2>&1 | tail -5 | tee $OUT/nccl1.log
cp runs/plain/log.jsonl $OUT/plain.jsonl; cp runs/nccl1/log.jsonl $OUT/nccl1.jsonl
python3 - <<'PY' | tee $OUT/compare.txt
import json, struct, numpy as np
def read(p):
    b = open(p, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8+n]); base = 8 + n
    return {k: np.frombuffer(b[base+v['data_offsets'][0]:base+v['data_offsets'][1]], dtype=np.float32) for k, v in h.items() if k != '__metadata__'}
a, b = read('runs/plain/checkpoint.safetensors'), read('runs/nccl1/checkpoint.safetensors')
assert a.keys() == b.keys(), (sorted(a.keys() ^ b.keys()))
diff = {k: float(np.max(np.abs(a[k] - b[k]))) if a[k].size else 0.0 for k in a}
bad = {k: d for k, d in diff.items() if d != 0}
print(f"tensors {len(a)}, identical {len(a) - len(bad)}, max |diff| {max(diff.values()):.3e}")
print("RESULT", "PASS world-1 NCCL == plain, bit for bit" if not bad else f"DIFF {sorted(bad.items(), key=lambda kv: -kv[1])[:5]}")
PY
