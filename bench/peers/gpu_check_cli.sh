#!/bin/bash
# Check call: parity (attention maps in bf16 too), and the user-facing commands on the GPU against the CPU.
set -o pipefail
cd "$(dirname "$0")"
export VITSHARP_KERNEL_CACHE=/tmp/vitsharp-kernels
timeout 300 ./app/vit cuda-selftest --refs refs > $OUT/selftest.log 2>&1; grep -vE "^PASS" $OUT/selftest.log | head -20; grep -E "probs" $OUT/selftest.log
for d in cpu cuda; do echo "== classify $d"; timeout 120 ./app/vit classify images -c refs/vit_s16_d3/model.safetensors -k 3 --device $d 2>&1 | tail -12; done
timeout 120 ./app/vit inspect -c refs/vit_s16_d3/model.safetensors -o /tmp/insp_cuda --image images/chelsea.png --device cuda 2>&1 | tail -3
timeout 120 ./app/vit inspect -c refs/vit_s16_d3/model.safetensors -o /tmp/insp_cpu --image images/chelsea.png --device cpu 2>&1 | tail -3
python3 -c "
import json
a=json.load(open('/tmp/insp_cuda/inspection.json'))['mean_attention_distance_px']; b=json.load(open('/tmp/insp_cpu/inspection.json'))['mean_attention_distance_px']
import numpy as np; a=np.array(a); b=np.array(b); print('attention distance cuda vs cpu: max rel', float(abs(a-b).max()/abs(b).max()))"
cp /tmp/insp_cuda/attention_rollout_0.png $OUT/ 2>/dev/null; true
