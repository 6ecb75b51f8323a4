#!/bin/bash
# Runs from the carried folder .gpu/ (app/ = trimmed self-contained publish, refs/, peers/, data/cifar10-jpeg.tar.gz, configs/).
set -o pipefail
cd "$(dirname "$0")"
export VITSHARP_KERNEL_CACHE=/tmp/vitsharp-kernels
date -u; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 60 ./app/vit cuda-selftest --train-only --train refs/vit_p4_train refs/vit_tiny32_train > $OUT/selftest.log 2>&1; echo "selftest rc $?"; grep -E "FAIL|passed" $OUT/selftest.log
for c in cifar:512 vit_small_patch16_224:256 vit_base_patch16_224:128; do
  timeout 40 ./app/vit bench-train --device cuda --model ${c%:*} --batch ${c#*:} 2>&1 | tee -a $OUT/bench.log
done
for dt in bf16 f32; do
  t0=$(date +%s)
  timeout 90 ./app/vit train --config configs/cifar10_vit_gpu.json --data data/cifar10-jpeg.tar.gz --device cuda --dtype $dt --set epochs=4 --set schedule.warmup_epochs=1 --output runs/$dt > /dev/null 2>&1; echo "$dt train rc $? in $(( $(date +%s) - t0 )) s"
  grep -E '"eval"' runs/$dt/log.jsonl | tee -a $OUT/dtype.log; grep '"step"' runs/$dt/log.jsonl | cut -c1-120 | tee -a $OUT/dtype.log
done
PYTHONUNBUFFERED=1 timeout 200 python3 peers/timm_train.py cifar:512 vit_small_patch16_224:256 vit_base_patch16_224:128 --compile --compile-budget-s 110 2>&1 | grep -E "RESULT|SKIP|rror|device" | tee -a $OUT/bench.log
