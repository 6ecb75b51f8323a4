#!/bin/bash
# DeiT-style distillation on CIFAR-10 (issue 13 §5), for the H200 machine (no .NET there: a self-contained publish,
# app.tar.xz, beside this script, with configs/ and data/cifar10-jpeg.tar.gz, as the other gpu_*.sh scripts).
#   bash gpu_distill_cifar.sh teacher.safetensors      # e.g. the 32² ViT-Lite-7/4 of configs/cifar10_vit_lite_gpu.json
# 0. the CUDA training self-test (the distillation kernels and a distilled step vs the CPU, graph replay; SELFTEST=0 skips);
# 1. the teacher's own top-1 (vit eval);
# 2. (a) configs/cifar10_student_ti.json: width 192, depth 6, 3 heads of 64, trained alone;
#    (b) configs/cifar10_student_ti_distilled.json: the same student with a distillation token and DeiT's hard
#        distillation from the teacher (KIND=soft for the soft one), the same epochs (EPOCHS, default 50);
# then both final top-1s. Each run is meant to take ≤ ~2 min; logs and both models go to $OUT.
set -o pipefail
cd "$(dirname "$0")"
TEACHER=${1:-teacher.safetensors}
EPOCHS=${EPOCHS:-50}
KIND=${KIND:-hard}
OUT=${OUT:-out}; mkdir -p "$OUT"
export VITSHARP_KERNEL_CACHE=/tmp/vitsharp-kernels
date -u; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; nproc
[ -x app/vit ] || tar -xJf app.tar.xz
[ -f "$TEACHER" ] || { echo "no teacher checkpoint $TEACHER (pass it as the first argument)"; exit 1; }
DATA=data/cifar10-jpeg.tar.gz
secs() { python3 -c "print(round($(date +%s.%N)-$1,1))"; }
top1() { python3 -c "import json,sys; e=[json.loads(l) for l in open(sys.argv[1]) if '\"kind\":\"eval\"' in l]; print('%.2f %%' % (100*e[-1]['top1']) if e else 'none')" "$1"; }

if [ "${SELFTEST:-1}" != 0 ]; then
  # The reference training folders (as gpu_check.sh's refs/); a missing one is reported as one failed line, the rest runs.
  TRAIN_REFS=$(ls -d refs/vit_p4_train refs/vit_tiny32_train 2>/dev/null); TRAIN_REFS=${TRAIN_REFS:-refs/vit_tiny32_train}
  timeout 600 ./app/vit cuda-selftest --train-only --train $TRAIN_REFS > $OUT/selftest_train.log 2>&1; echo "selftest rc $?"
  grep -vE "^PASS" $OUT/selftest_train.log | head -20; grep -E "Distillation|distillation|EmbedTokens|ScaleInto" $OUT/selftest_train.log | head -40
fi

./app/vit eval --checkpoint "$TEACHER" --data $DATA --device cuda > $OUT/teacher_eval.log 2>&1; echo "teacher eval rc $?"; grep -E "top-1|images" $OUT/teacher_eval.log | head -2

T0=$(date +%s.%N)
./app/vit train --config configs/cifar10_student_ti.json --data $DATA --device cuda --set epochs=$EPOCHS --output runs/student_alone --no-resume \
  > $OUT/alone.log 2>&1; echo "(a) alone rc $? in $(secs $T0) s"
T1=$(date +%s.%N)
./app/vit train --config configs/cifar10_student_ti_distilled.json --teacher "$TEACHER" --distillation $KIND --data $DATA --device cuda \
  --set epochs=$EPOCHS --output runs/student_distilled --no-resume > $OUT/distilled.log 2>&1; echo "(b) distilled ($KIND) rc $? in $(secs $T1) s"
grep -E "distilling from" $OUT/distilled.log
for r in alone distilled; do
  cp runs/student_$r/log.jsonl $OUT/$r.jsonl; cp runs/student_$r/model.safetensors $OUT/student_$r.safetensors
  grep '"kind":"step"' runs/student_$r/log.jsonl | tail -1 | cut -c1-200
  tail -1 $OUT/$r.log
done
# The distilled student reloads as a model with both heads (inference: their mean) and vit eval scores what vit train did.
./app/vit eval --checkpoint runs/student_distilled/model.safetensors --data $DATA --device cuda > $OUT/distilled_eval.log 2>&1; echo "distilled eval rc $?"
grep -E "top-1" $OUT/distilled_eval.log | head -1
echo "RESULT epochs=$EPOCHS alone_top1=$(top1 runs/student_alone/log.jsonl) distilled_${KIND}_top1=$(top1 runs/student_distilled/log.jsonl)"
