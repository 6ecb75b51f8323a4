#!/bin/bash
# Benchmark call: parity first, then VitSharp and timm (eager, torch.compile) on the same GPU in one command.
set -o pipefail
cd "$(dirname "$0")"
export VITSHARP_KERNEL_CACHE=/tmp/vitsharp-kernels
date -u; nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu --format=csv,noheader
cat kernels/common.cu kernels/attention.cu > /tmp/att.cu && timeout 120 nvcc -arch=sm_90 -cubin -o /tmp/att.cubin -Xptxas -v /tmp/att.cu 2>&1 | grep -A1 "hd64_w" | grep -E "registers" | head -4
timeout 300 ./app/vit cuda-selftest --refs refs > $OUT/selftest.log 2>&1; grep -E "FAIL|model|passed" $OUT/selftest.log
for c in vit_tiny_patch16_224:256 vit_small_patch16_224:256 vit_base_patch16_224:256 vit_large_patch16_224:256 vit_base_patch16_224:1; do
  timeout 120 ./app/vit bench --model ${c%:*} --batch ${c#*:} --iters $([ ${c#*:} = 1 ] && echo 200 || echo 20) 2>&1 | tee -a $OUT/bench.log
done
timeout 90 ./app/vit bench --model vit_base_patch16_224 --batch 256 --profile 2>&1 | grep -v RESULT | tee -a $OUT/bench.log
PYTHONUNBUFFERED=1 timeout 420 python3 peers/timm_infer.py --compile --compile-budget-s 330 vit_base_patch16_224:256 vit_base_patch16_224:1 vit_tiny_patch16_224:256 vit_small_patch16_224:256 vit_large_patch16_224:256 2>&1 | grep -E "RESULT|SKIP|Error|error" | tee -a $OUT/bench.log
