#!/bin/bash
# CIFAR-10 time to accuracy on the GPU machine, run from the carried folder .gpu/ (app.tar.xz = trimmed self-contained
# publish, configs/ = the repository's configs, data/cifar10-jpeg.tar.gz). A 3-epoch probe measures the end-to-end rate;
# the run then takes as many epochs as fit 440 s (at most 400); the shipped model's run got 36,020 img/s -> 310 epochs.
set -o pipefail
cd "$(dirname "$0")"
export VITSHARP_KERNEL_CACHE=/tmp/vitsharp-kernels
date -u; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; nproc
tar -xJf app.tar.xz
t0=$(date +%s)
timeout 90 ./app/vit train --config configs/cifar10_vit_gpu.json --data data/cifar10-jpeg.tar.gz --device cuda --set epochs=3 --set schedule.warmup_epochs=1 --set eval_every_epochs=3 --output runs/probe > $OUT/probe.log 2>&1; echo "probe rc $? in $(( $(date +%s) - t0 )) s"
grep '"kind":"step"' runs/probe/log.jsonl | cut -c1-200
rate=$(grep '"kind":"step"' runs/probe/log.jsonl | tail -2 | sed 's/.*"images_per_s":\([0-9.]*\).*/\1/' | sort -n | head -1)
E=$(python3 -c "print(min(400, int(float('$rate')*440/50000/10)*10))")
echo "rate $rate -> epochs $E"
cp configs/cifar10_vit_gpu.json $OUT/config.json
t0=$(date +%s)
timeout 500 ./app/vit train --config configs/cifar10_vit_gpu.json --data data/cifar10-jpeg.tar.gz --device cuda --set epochs=$E --output runs/cifar10_vit_gpu > $OUT/train.log 2>&1; echo "train rc $? epochs $E in $(( $(date +%s) - t0 )) s (process start to exit)"
grep -iE "cache|decod|rror" $OUT/train.log | head -5
cp runs/cifar10_vit_gpu/log.jsonl $OUT/log.jsonl; cp runs/cifar10_vit_gpu/model.safetensors $OUT/model.safetensors
grep '"eval"' runs/cifar10_vit_gpu/log.jsonl | cut -c1-150
grep '"kind":"step"' runs/cifar10_vit_gpu/log.jsonl | awk 'NR%50==0' | cut -c1-200
