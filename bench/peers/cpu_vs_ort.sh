#!/usr/bin/env bash
# VitSharp's CPU backend against ONNX Runtime (2 intra-op threads) on the same timm ViT-S/16 and ViT-B/16 graphs,
# back to back in one run (same thread count for both), interleaved per (model, batch) and repeated for two rounds (the machines are shared/noisy).
# usage: [WARMUP=2] [THREADS=2] [MODELS="vit_small_patch16_224 vit_base_patch16_224"] [BATCHES="1 16"] [BASELINE=path/to/VitSharp.Bench] [INT8=1] bench/peers/cpu_vs_ort.sh
# INT8=1: also int8 — ORT's dynamic quantisation of the same graph (bench/peers/models/<model>.int8.onnx.gz, made by
# ort_quantize.py) beside `VitSharp.Bench vit --dtype int8`, for the models that have such a file.
# WARMUP: forwards before timing, for both (default 2 for VitSharp and 3 for ORT as before; 30 lets .NET's tiered JIT
# reach steady state: with 2, about the first 15 batch-1 forwards of ViT-S run partly in tier-0 code).
# BASELINE: another build of the bench (e.g. of main) run right after this one's, to compare versions in the same run.
# (ORT_DIR defaults to /tmp/ort, a scratch folder outside the repo)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
export ORT_DIR=${ORT_DIR:-/tmp/ort}
if [ ! -d "$ORT_DIR/node_modules/onnxruntime-node" ]; then
  mkdir -p "$ORT_DIR" && (cd "$ORT_DIR" && npm install --ignore-scripts onnxruntime-node@1.30.0 >/dev/null)
fi
models=${MODELS:-"vit_small_patch16_224 vit_base_patch16_224"}
threads=${THREADS:-2}
for m in $models; do
  # The export shares equal (constant) weights across blocks; give every block its own copy again.
  if [ ! -f "$ORT_DIR/$m.full.onnx" ]; then
    gunzip -c "$root/bench/peers/models/$m.onnx.gz" > "$ORT_DIR/$m.onnx"
    python3 "$root/bench/peers/unshare_onnx.py" "$ORT_DIR/$m.onnx" "$ORT_DIR/$m.full.onnx"
  fi
  if [ -n "${INT8:-}" ] && [ -f "$root/bench/peers/models/$m.int8.onnx.gz" ] && [ ! -f "$ORT_DIR/$m.int8.onnx" ]; then
    gunzip -c "$root/bench/peers/models/$m.int8.onnx.gz" > "$ORT_DIR/$m.int8.onnx"
  fi
done
dotnet build "$root/bench/VitSharp.Bench" -c Release 2>&1 | grep -E "error|Warn|Elapsed" || true
bench="$root/bench/VitSharp.Bench/bin/Release/net10.0/VitSharp.Bench"
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), warm-up forwards: ${WARMUP:-2 (ours) / 3 (ORT)}"
echo "cpu: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) vCPUs; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
"$bench" peak --reps 5
for round in 1 2; do
  echo "--- round $round"
  for m in $models; do
    for b in ${BATCHES:-1 16}; do
      reps=$([ "$b" = 1 ] && echo 15 || echo 5)
      node "$root/bench/peers/ort_cpu.js" "$ORT_DIR/$m.full.onnx" $b $reps $threads ${WARMUP:-3}
      "$bench" vit --model $m --batch $b --reps $reps --threads $threads --warmup ${WARMUP:-2}
      if [ -n "${INT8:-}" ] && [ -f "$ORT_DIR/$m.int8.onnx" ]; then
        node "$root/bench/peers/ort_cpu.js" "$ORT_DIR/$m.int8.onnx" $b $reps $threads ${WARMUP:-3}
        "$bench" vit --model $m --batch $b --reps $reps --threads $threads --dtype int8 --warmup ${WARMUP:-2}
      fi
      if [ -n "${BASELINE:-}" ]; then echo -n "baseline: "; "$BASELINE" vit --model $m --batch $b --reps $reps --threads $threads; fi
    done
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
