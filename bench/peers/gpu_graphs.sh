#!/bin/bash
# Recorded-step (CUDA graph) training on the GPU machine, from the carried .gpu/ (app.tar.xz, refs/, peers/, configs/, data/):
# the CUDA training self-test (graph replay bit for bit against eager), bench-train eager vs --graphs beside timm's
# peer in the same run, and a short CIFAR-10 run with and without cuda_graphs (the same weights, byte for byte).
set -o pipefail
cd "$(dirname "$0")"
export VITSHARP_KERNEL_CACHE=/tmp/vitsharp-kernels
date -u; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; nproc
[ -x app/vit ] || tar -xJf app.tar.xz
t0=$(date +%s)
timeout 150 ./app/vit cuda-selftest --train-only --train refs/vit_p4_train refs/vit_tiny32_train > $OUT/selftest.log 2>&1; echo "selftest rc $? in $(( $(date +%s) - t0 )) s"
grep -iE "replay|determinism|passed|FAIL" $OUT/selftest.log | head -20
for c in cifar:256 cifar:128 cifar:512 vit_small_patch16_224:256 vit_base_patch16_224:128; do
  m=${c%%:*}; b=${c##*:}
  timeout 60 ./app/vit bench-train --device cuda --model $m --batch-size $b --steps 20 --rounds 3 2>&1 | grep RESULT
  timeout 60 ./app/vit bench-train --device cuda --model $m --batch-size $b --steps 20 --rounds 3 --graphs 2>&1 | grep RESULT
done
./app/vit bench-train --device cuda --model cifar --batch-size 256 --steps 10 --rounds 1 --profile > $OUT/prof-cifar.txt 2>&1; head -16 $OUT/prof-cifar.txt
cd peers && timeout 200 python3 timm_train.py vit_small_patch16_224:256 vit_base_patch16_224:128 cifar:256 2>&1 | grep RESULT
timeout 200 python3 timm_train.py cifar:512 --compile 2>&1 | grep RESULT; cd ..
for g in true false; do
  t0=$(date +%s)
  timeout 100 ./app/vit train --config configs/cifar10_vit_gpu.json --data data/cifar10-jpeg.tar.gz --device cuda --set epochs=4 --set schedule.warmup_epochs=1 --set eval_every_epochs=4 --set cuda_graphs=$g --output runs/g$g > $OUT/train-$g.log 2>&1
  echo "train cuda_graphs=$g rc $? in $(( $(date +%s) - t0 )) s"; grep '"kind":"step"' runs/g$g/log.jsonl | tail -2 | cut -c1-200; grep '"eval"' runs/g$g/log.jsonl | cut -c1-120
  sha256sum runs/g$g/model.safetensors
done
