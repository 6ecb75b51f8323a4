#!/bin/bash
# Training call (CUDA training backend): training self-test (ops vs CPU, gradients vs PyTorch, determinism), then
# VitSharp's and timm's training throughput on the same GPU in one command, then a short CIFAR-10 run through `vit train`.
# Runs from the carried folder: app/ (publish output), refs/ (vit_p4_train, vit_tiny32_train), peers/, data/.
set -o pipefail
cd "$(dirname "$0")"
export VITSHARP_KERNEL_CACHE=/tmp/vitsharp-kernels
date -u; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; nproc
timeout 200 ./app/vit cuda-selftest --refs refs --train refs/vit_p4_train refs/vit_tiny32_train > $OUT/selftest.log 2>&1; echo "selftest rc $?"
grep -E "FAIL|passed|Exception" $OUT/selftest.log | head -40
for c in ${CASES:-cifar:512 vit_small_patch16_224:256 vit_base_patch16_224:128}; do
  timeout 120 ./app/vit bench-train --device cuda --model ${c%:*} --batch ${c#*:} 2>&1 | tee -a $OUT/bench.log
done
if [ -n "$TRAIN_ARGS" ]; then
  timeout ${TRAIN_TIMEOUT:-200} ./app/vit train $TRAIN_ARGS 2>&1 | grep -vE "^\s*$" | tail -30 | tee $OUT/train.log
  cp runs/*/log.jsonl $OUT/ 2>/dev/null
fi
PYTHONUNBUFFERED=1 timeout ${PEER_TIMEOUT:-300} python3 peers/timm_train.py ${CASES:-cifar:512 vit_small_patch16_224:256 vit_base_patch16_224:128} $PEER_FLAGS 2>&1 | grep -E "RESULT|SKIP|rror|device" | tee -a $OUT/bench.log
