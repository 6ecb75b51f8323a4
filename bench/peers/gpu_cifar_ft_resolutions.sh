#!/bin/bash
# Call 3: does fine-tuning the 300-epoch 32² model at a higher resolution pay on CIFAR-10? 64², 48², and 32² (control).
set -o pipefail
cd "$(dirname "$0")"
export VITSHARP_KERNEL_CACHE=/tmp/vitsharp-kernels
[ -x app/vit ] || tar -xJf app.tar.xz
for s in 64 32 48; do
  t0=$(date +%s.%N)
  timeout 200 ./app/vit finetune -c pre/lite300.bf16.safetensors --img-size $s --classes 10 --data data/cifar10-jpeg.tar.gz --config configs/cifar10_vit_lite_ft64.json --device cuda --set data.crop_padding=$((s/8)) -o runs/ft$s "$@" > $OUT/ft$s.log 2>&1
  echo "ft $s rc $? in $(python3 -c "print(round($(date +%s.%N)-$t0,1))") s"
  grep '"eval' runs/ft$s/log.jsonl | cut -c1-140; grep '"kind":"step"' runs/ft$s/log.jsonl | tail -1 | cut -c1-200; tail -2 $OUT/ft$s.log
  cp runs/ft$s/log.jsonl $OUT/ft$s.jsonl
done
