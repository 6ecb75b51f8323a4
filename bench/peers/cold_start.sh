#!/usr/bin/env bash
# Cold start on the CPU (issue 13 part 3): wall time from process start to the first prediction, and peak resident
# memory, for `vit classify` (fp32 and int8 checkpoints of random-init ViT-Ti/16 and ViT-S/16, one 224² JPEG) beside
# ONNX Runtime 1.30 (onnxruntime-node: create the session, one batch-1 forward) on the same models' ONNX graphs
# (ViT-S: the timm export in bench/peers/models and ORT's own int8 quantisation of it; ViT-Ti: `vit export` of the
# same random weights). Each measurement 5 times; the median is printed. 2 threads for ORT; VitSharp uses every core (2 on CI).
# usage: bench/peers/cold_start.sh   (ORT_DIR defaults to /tmp/ort; run bench/peers/cpu_vs_ort.sh INT8=1 first for the ORT files)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
export ORT_DIR=${ORT_DIR:-/tmp/ort}
w=${WORK:-/tmp/vitsharp-cold}; mkdir -p "$w"
dotnet build "$root/src/VitSharp.Cli" -c Release 2>&1 | grep -E " error |rror" || true
vit="$root/src/VitSharp.Cli/bin/Release/net10.0/vit"
img="$root/samples/$(ls "$root/samples" | grep -iE '\.jpe?g$' | head -1)"
for m in vit_tiny_patch16_224 vit_small_patch16_224; do
  [ -f "$w/$m.safetensors" ] || "$vit" init -m $m -o "$w/$m.safetensors" --classes 1000 >/dev/null
  [ -f "$w/$m.int8.safetensors" ] || "$vit" quantize -c "$w/$m.safetensors" -o "$w/$m.int8.safetensors" >/dev/null
done
[ -f "$w/vit_tiny_patch16_224.onnx" ] || "$vit" export -c "$w/vit_tiny_patch16_224.safetensors" -o "$w/vit_tiny_patch16_224.onnx" >/dev/null
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'); cpu: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) vCPUs; load: $(cut -d' ' -f1-3 /proc/loadavg)"
measure() {  # label, command...: median wall ms and peak RSS MB of 5 runs
  local label=$1; shift; local ts=() rs=()
  for i in 1 2 3 4 5; do
    /usr/bin/time -o "$w/time.txt" -f "%e %M" "$@" >/dev/null 2>&1
    local o; o=$(tail -1 "$w/time.txt")
    ts+=("$(echo "$o" | awk '{print $1 * 1000}')"); rs+=("$(echo "$o" | awk '{print $2 / 1024}')")
  done
  printf '%-55s median %6.0f ms  peak RSS %5.0f MB  (runs: %s ms)\n' "$label" \
    "$(printf '%s\n' "${ts[@]}" | sort -n | sed -n 3p)" "$(printf '%s\n' "${rs[@]}" | sort -n | sed -n 3p)" "${ts[*]}"
}
export DOTNET_TieredPGO=1
for m in vit_tiny_patch16_224 vit_small_patch16_224; do
  measure "vitsharp classify $m fp32" "$vit" classify -c "$w/$m.safetensors" "$img"
  measure "vitsharp classify $m int8" "$vit" classify -c "$w/$m.int8.safetensors" "$img"
done
measure "onnxruntime vit_tiny_patch16_224 fp32 (vit export)" node "$root/bench/peers/ort_cold.js" "$w/vit_tiny_patch16_224.onnx" 2
measure "onnxruntime vit_small_patch16_224 fp32 (timm export)" node "$root/bench/peers/ort_cold.js" "$ORT_DIR/vit_small_patch16_224.full.onnx" 2
measure "onnxruntime vit_small_patch16_224 int8 (quantize_dynamic)" node "$root/bench/peers/ort_cold.js" "$ORT_DIR/vit_small_patch16_224.int8.onnx" 2
