#!/bin/bash
# Call 4: CIFAR-10 time to accuracy, the paper's workflow: pre-train ViT-Lite-7/4 at 32² for 300 epochs
# (configs/cifar10_vit_lite_gpu.json), then fine-tune at 64² for 15 epochs (configs/cifar10_vit_lite_ft64.json).
set -o pipefail
cd "$(dirname "$0")"
export VITSHARP_KERNEL_CACHE=/tmp/vitsharp-kernels
date -u; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; nproc
[ -x app/vit ] || tar -xJf app.tar.xz
T0=$(date +%s.%N)
./app/vit train --config configs/cifar10_vit_lite_gpu.json --data data/cifar10-jpeg.tar.gz --device cuda --output runs/pre > $OUT/pre.log 2>&1; echo "pre rc $? at $(python3 -c "print(round($(date +%s.%N)-$T0,1))") s"
T1=$(date +%s.%N)
./app/vit finetune -c runs/pre/model.safetensors --img-size 64 --classes 10 --data data/cifar10-jpeg.tar.gz --config configs/cifar10_vit_lite_ft64.json --device cuda -o runs/ft > $OUT/ft.log 2>&1; echo "ft rc $? in $(python3 -c "print(round($(date +%s.%N)-$T1,1))") s; total $(python3 -c "print(round($(date +%s.%N)-$T0,1))") s (process starts to exits)"
cp runs/pre/log.jsonl $OUT/pre.jsonl; cp runs/ft/log.jsonl $OUT/ft.jsonl; cp runs/ft/model.safetensors $OUT/model_ft64.safetensors; cp runs/pre/model.safetensors $OUT/model_pre.safetensors
grep '"eval"' runs/pre/log.jsonl | tail -2 | cut -c1-140; grep '"eval"' runs/ft/log.jsonl | cut -c1-140; tail -2 $OUT/ft.log
sha256sum runs/pre/model.safetensors
