#!/bin/bash
# One CIFAR-10 time-to-accuracy run from the carried .gpu/: gpu_cifar_run.sh CONFIG BUDGET_S MAX_EPOCHS [--set k=v ...].
# A 2-epoch probe measures the end-to-end rate; the run takes as many epochs (a multiple of 10) as fit BUDGET_S.
set -o pipefail
cd "$(dirname "$0")"
export VITSHARP_KERNEL_CACHE=/tmp/vitsharp-kernels
cfg=$1; budget=$2; maxe=$3; shift 3
date -u; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; nproc
[ -x app/vit ] || tar -xJf app.tar.xz
t0=$(date +%s)
timeout 90 ./app/vit train --config $cfg --data data/cifar10-jpeg.tar.gz --device cuda "$@" --set epochs=2 --set schedule.warmup_epochs=1 --set eval_every_epochs=2 --set log_every_steps=50 --set ema_decay=0 --output runs/probe > $OUT/probe.log 2>&1; echo "probe rc $? in $(( $(date +%s) - t0 )) s"
grep '"kind":"step"' runs/probe/log.jsonl | tail -3 | cut -c1-200
rate=$(grep '"kind":"step"' runs/probe/log.jsonl | tail -3 | sed 's/.*"images_per_s":\([0-9.]*\).*/\1/' | sort -n | head -1)
E=$(python3 -c "print(min($maxe, int(float('$rate')*$budget/50000/10)*10))")
echo "rate $rate -> epochs $E"
cp $cfg $OUT/config.json
t0=$(date +%s)
timeout 560 ./app/vit train --config $cfg --data data/cifar10-jpeg.tar.gz --device cuda "$@" --set epochs=$E --output runs/main > $OUT/train.log 2>&1; echo "train rc $? epochs $E in $(( $(date +%s) - t0 )) s (process start to exit)"
grep -iE "rror" $OUT/train.log | head -5
cp runs/main/log.jsonl $OUT/log.jsonl; cp runs/main/model.safetensors $OUT/model.safetensors; cp runs/main/model_ema.safetensors $OUT/model_ema.safetensors 2>/dev/null
grep '"eval' runs/main/log.jsonl | cut -c1-140
grep '"kind":"step"' runs/main/log.jsonl | awk 'NR%40==0' | cut -c1-200
