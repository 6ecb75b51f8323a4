#!/bin/bash
# Benchmark call (VitSharp.Models.VisionTransformer on the CUDA backend): parity first, then VitSharp and timm
# (eager and torch.compile) on the same GPU in one command.
set -o pipefail
cd "$(dirname "$0")"
export VITSHARP_KERNEL_CACHE=/tmp/vitsharp-kernels
date -u; nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv,noheader
cat kernels/common.cu kernels/attention.cu > /tmp/att.cu && timeout 60 nvcc -arch=sm_90 -cubin -o /tmp/att.cubin -Xptxas -v /tmp/att.cu 2>&1 | grep -E "registers" | sed -n 3,6p
timeout 300 ./app/vit cuda-selftest --refs refs > $OUT/selftest.log 2>&1; grep -E "FAIL|LayerNorm|model|passed" $OUT/selftest.log
for w in 4 8; do VITSHARP_ATTN_WARPS=$w timeout 60 ./app/vit bench --device cuda --model vit_base_patch16_224 --batch 256 2>&1 | sed "s/^/attn-w$w /"; done
for c in vit_tiny_patch16_224:256 vit_small_patch16_224:256 vit_base_patch16_224:256 vit_large_patch16_224:256 vit_base_patch16_224:1; do
  timeout 120 ./app/vit bench --device cuda --model ${c%:*} --batch ${c#*:} --iters $([ ${c#*:} = 1 ] && echo 200 || echo 20) 2>&1 | tee -a $OUT/bench.log
done
for m in vit_base_patch16_224 vit_tiny_patch16_224; do timeout 90 ./app/vit bench --device cuda --model $m --batch 256 --iters 5 --rounds 1 --profile 2>&1 | grep -v RESULT | tee -a $OUT/bench.log; done
PYTHONUNBUFFERED=1 timeout 400 python3 peers/timm_infer.py --compile --compile-budget-s 330 vit_base_patch16_224:256 vit_base_patch16_224:1 vit_tiny_patch16_224:256 vit_small_patch16_224:256 vit_large_patch16_224:256 2>&1 | grep -E "RESULT|SKIP|Error|error" | tee -a $OUT/bench.log
