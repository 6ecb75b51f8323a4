#!/bin/bash
# Runs from the carried folder .gpu/ (app/ = trimmed self-contained publish, refs/, peers/, data/cifar10-jpeg.tar.gz, configs/).
set -o pipefail
cd "$(dirname "$0")"
export VITSHARP_KERNEL_CACHE=/tmp/vitsharp-kernels
date -u
timeout 60 ./app/vit cuda-selftest --train-only --train refs/vit_p4_train refs/vit_tiny32_train > $OUT/selftest.log 2>&1; echo "selftest rc $?"; grep -E "FAIL|passed" $OUT/selftest.log
timeout 40 ./app/vit bench-train --device cuda --model cifar --batch 512 2>&1 | tee $OUT/bench.log
timeout 40 ./app/vit bench-train --device cuda --model vit_base_patch16_224 --batch 128 --profile 2>&1 | head -16 | tee -a $OUT/bench.log
t0=$(date +%s)
timeout 455 ./app/vit train --config configs/cifar10_vit_gpu.json --data data/cifar10-jpeg.tar.gz --device cuda --output runs/c3 > $OUT/train.log 2>&1; echo "train rc $? in $(( $(date +%s) - t0 )) s"
grep -vE "^\s*$" $OUT/train.log | grep -iE "cache|decod|held|done|rror" | head; cp runs/c3/log.jsonl $OUT/ 2>/dev/null
grep '"eval"' runs/c3/log.jsonl | awk 'NR%10==0' ; grep '"eval"' runs/c3/log.jsonl | tail -2
cp runs/c3/model.safetensors $OUT/ 2>/dev/null
