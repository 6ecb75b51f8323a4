#!/bin/bash
# Imagenette: ViT-S/16 pre-trained at 128², fine-tuned at 224², and the control fine-tuned at 128², from the carried .gpu/.
# The 132 MB archive is over one call's 64 MiB, so it travels in four parts (split -b 34000000 -d -a 1), one part a call
# while the machine stays warm (.gpu/n1 … .gpu/n4), and this last call joins them.
set -o pipefail
cd "$(dirname "$0")"
export VITSHARP_KERNEL_CACHE=/tmp/vitsharp-kernels
date -u; ls -la n1 n2 n3 n4
[ -x app/vit ] || tar -xJf app.tar.xz
cat n1/part0 n2/part1 n3/part2 n4/part3 > /tmp/imagenette-224.tar.gz; ls -la /tmp/imagenette-224.tar.gz
t0=$(date +%s)
timeout 230 ./app/vit train --config configs/imagenette_vit_s16_pretrain128.json --data /tmp/imagenette-224.tar.gz --device cuda --output runs/in128 > $OUT/pre.log 2>&1; echo "pretrain rc $? in $(( $(date +%s) - t0 )) s"
grep -iE "decod|rror" $OUT/pre.log | head -3; cp runs/in128/log.jsonl $OUT/pre-log.jsonl
grep '"eval"' runs/in128/log.jsonl | cut -c1-130; grep '"kind":"step"' runs/in128/log.jsonl | tail -1 | cut -c1-200
t0=$(date +%s)
timeout 150 ./app/vit finetune -c runs/in128/model.safetensors --img-size 224 --config configs/imagenette_vit_s16_finetune224.json --data /tmp/imagenette-224.tar.gz --device cuda --output runs/ft224 > $OUT/ft.log 2>&1; echo "ft224 rc $? in $(( $(date +%s) - t0 )) s"
cp runs/ft224/log.jsonl $OUT/ft224-log.jsonl; grep '"eval"' runs/ft224/log.jsonl | cut -c1-130; grep '"kind":"step"' runs/ft224/log.jsonl | tail -1 | cut -c1-200
cp runs/ft224/model.safetensors $OUT/ft224.safetensors; cp runs/in128/model.safetensors $OUT/pre128.safetensors
t0=$(date +%s)
timeout 80 ./app/vit finetune -c runs/in128/model.safetensors --img-size 128 --config configs/imagenette_vit_s16_finetune224.json --data /tmp/imagenette-224.tar.gz --device cuda --output runs/ft128 > $OUT/ft128.log 2>&1; echo "ft128 control rc $? in $(( $(date +%s) - t0 )) s"
cp runs/ft128/log.jsonl $OUT/ft128-log.jsonl; grep '"eval"' runs/ft128/log.jsonl | tail -2 | cut -c1-130
