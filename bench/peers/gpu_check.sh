#!/bin/bash
# Check call: parity incl. Mixer and misaligned operands, F32 path speed, bf16 B/16 unchanged.
set -o pipefail
cd "$(dirname "$0")"
export VITSHARP_KERNEL_CACHE=/tmp/vitsharp-kernels
timeout 300 ./app/vit cuda-selftest --refs refs > $OUT/selftest.log 2>&1; grep -vE "^PASS" $OUT/selftest.log | head -30; grep -E "misaligned|Attention.*(hd48|hd96|hd160)|F32 Attention|model" $OUT/selftest.log
timeout 90 ./app/vit bench --device cuda --model vit_base_patch16_224 --batch 64 --dtype f32 --iters 5 --rounds 3 --profile 2>&1 | tee -a $OUT/bench.log
timeout 90 ./app/vit bench --device cuda --model vit_base_patch16_224 --batch 256 --dtype bf16 2>&1 | tee -a $OUT/bench.log
