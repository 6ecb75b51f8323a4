#!/bin/bash
# For the GPU machine, run from the carried .gpu/ folder (app.tar.xz: a self-contained publish; configs/; data/cifar10-jpeg.tar.gz;
# peers/scaled_mm.py): 1. FP8 diagnosis (cuBLASLt's own log, CUBLASLT_LOG_LEVEL=5, for our FP8 products and for PyTorch's
# _scaled_mm); 2. the CUDA self-test with the conv-tokenizer checks; 3. CIFAR-10 time to accuracy with the CCT-7/3x2 shape:
# configs/cifar10_cct_gpu.json at 32² for 300 epochs, then configs/cifar10_cct_ft64.json at 64² for 15 (after `vit bench-train -C`
# of the CIFAR models, and a per-kernel profile of the CCT step). PRE=cifar10_cct_seq_gpu runs the SeqPool variant instead.
set -o pipefail
cd "$(dirname "$0")"
tar -xJf app.tar.xz
export VITSHARP_KERNEL_CACHE=/tmp/vitsharp-kernels
date -u; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
el() { python3 -c "print(round($(date +%s.%N)-$1,1))"; }
R=${REFS:-../tests}/VitSharp.Tests/Data/refs-small
PRE=${PRE:-cifar10_cct_gpu}
CUBLASLT_LOG_LEVEL=5 CUBLASLT_LOG_FILE=/tmp/lt_ours.log timeout 40 ./app/vit cuda-selftest --fp8-only > /tmp/fp8.log 2>&1; echo "fp8 rc $?"
grep probe /tmp/fp8.log | cut -c1-400 | head -3; grep "own scale" /tmp/fp8.log | cut -c1-400; grep -E "^(PASS|FAIL)  FP8 Linear" /tmp/fp8.log | head -2 | cut -c1-150
CUBLASLT_LOG_LEVEL=5 CUBLASLT_LOG_FILE=/tmp/lt_torch.log timeout 40 python3 peers/scaled_mm.py 2>&1 | tail -2
grep -i -E "error|not supported|fail" /tmp/lt_ours.log | head -5 | cut -c1-300
tar -czf $OUT/fp8diag.tar.gz -C /tmp fp8.log lt_ours.log lt_torch.log
timeout 60 ./app/vit cuda-selftest --refs $R --train $R/vit_tiny32_train > $OUT/selftest.log 2>&1; echo "selftest rc $?"
grep -E "^FAIL|passed" $OUT/selftest.log | grep -v FP8 | cut -c1-160 | head -12; grep -i -E "conv|pool|unfold|im2col" $OUT/selftest.log | cut -c1-140 | head -24
for c in cifar10_vit_lite_gpu cifar10_cct_gpu cifar10_cct_seq_gpu; do timeout 40 ./app/vit bench-train --device cuda -C configs/$c.json --batch 128 --graphs 2>&1 | grep -E "RESULT|rror"; done
timeout 40 ./app/vit bench-train --device cuda -C configs/$PRE.json --batch 128 --profile 2>&1 | grep -v RESULT | head -24
T0=$(date +%s.%N)
timeout 360 ./app/vit train --config configs/$PRE.json --data data/cifar10-jpeg.tar.gz --device cuda --output runs/pre > /tmp/pre.log 2>&1; echo "pre rc $? at $(el $T0) s"
tail -3 /tmp/pre.log | cut -c1-200; grep '"step"' runs/pre/log.jsonl | tail -1 | cut -c1-200
grep '"eval' runs/pre/log.jsonl | awk 'NR%3==0' | cut -c1-140
cp runs/pre/log.jsonl $OUT/pre.jsonl
if [ -f runs/pre/model.safetensors ]; then
  T1=$(date +%s.%N)
  timeout 110 ./app/vit finetune -c runs/pre/model.safetensors --img-size 64 --classes 10 --data data/cifar10-jpeg.tar.gz --config configs/cifar10_cct_ft64.json --device cuda -o runs/ft > /tmp/ft.log 2>&1; echo "ft rc $? in $(el $T1) s; total $(el $T0) s"
  tail -2 /tmp/ft.log | cut -c1-200; grep '"eval' runs/ft/log.jsonl | cut -c1-140
  cp runs/ft/log.jsonl $OUT/ft.jsonl; cp runs/ft/model.safetensors $OUT/cct_ft64.safetensors; cp runs/pre/model.safetensors $OUT/cct_pre32.safetensors
fi
