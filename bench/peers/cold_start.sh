#!/usr/bin/env bash
# Cold start on the CPU (issue 13 part 3): wall time from process start to the first prediction, and peak resident
# memory, for `vit classify` (fp32 and int8 checkpoints of random-init ViT-Ti/16 and ViT-S/16, one 224² JPEG) beside
# ONNX Runtime 1.30 (onnxruntime-node: create the session, one batch-1 forward) on the same models' ONNX graphs
# (ViT-S: the timm export in bench/peers/models and ORT's own int8 quantisation of it; ViT-Ti: `vit export` of the
# same random weights). Each measurement RUNS times (default 5); the median is printed. 2 threads for ORT; VitSharp uses
# every core (2 here). VitSharp runs as built (`dotnet build -c Release`, framework-dependent, JIT with the CLI's
# runtimeconfig: TieredPGO on as its csproj sets it; no environment overrides).
# BASELINE=path/to/an/older/vit also runs that build right after this one (e.g. main's bin/Release/net10.0/vit).
# ViT-Ti int8 for ORT: $ORT_DIR/vit_tiny_patch16_224.int8.onnx, made from the `vit export` graph by
# `python3 bench/peers/ort_quantize.py` where Python onnxruntime is installed; the row is skipped when the file is missing.
# usage: [RUNS=5] [BASELINE=…/vit] [R2R=1] bench/peers/cold_start.sh   (ORT_DIR defaults to /tmp/ort; run bench/peers/cpu_vs_ort.sh INT8=1 first for the ORT files)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
export ORT_DIR=${ORT_DIR:-/tmp/ort}
w=${WORK:-/tmp/vitsharp-cold}; mkdir -p "$w"
dotnet build "$root/src/VitSharp.Cli" -c Release 2>&1 | grep -E " error |rror" || true
vit="$root/src/VitSharp.Cli/bin/Release/net10.0/vit"
# R2R=1: also the documented publish for a runtime (ReadyToRun, framework-dependent), in $WORK/r2r
[ -n "${R2R:-}" ] && (cd /tmp && dotnet publish "$root/src/VitSharp.Cli" -c Release -r linux-x64 --self-contained false -o "$w/r2r" 2>&1 | grep -E " error " || true)
img="$root/samples/$(ls "$root/samples" | grep -iE '\.jpe?g$' | head -1)"
for m in vit_tiny_patch16_224 vit_small_patch16_224; do
  [ -f "$w/$m.safetensors" ] || "$vit" init -m $m -o "$w/$m.safetensors" --classes 1000 >/dev/null
  [ -f "$w/$m.int8.safetensors" ] || "$vit" quantize -c "$w/$m.safetensors" -o "$w/$m.int8.safetensors" >/dev/null
done
# the input ORT's peer feeds (1×3×224×224, all 0.1) as .npy, for `vit run` without image decoding
[ -f "$w/input.npy" ] || python3 -c "
import struct,sys
h=\"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, 224, 224), }\"; h+=' '*(117-len(h))+'\\n'
sys.stdout.buffer.write(b'\\x93NUMPY\\x01\\x00'+struct.pack('<H',len(h))+h.encode()+struct.pack('<f',0.1)*(3*224*224))" > "$w/input.npy"
[ -f "$w/vit_tiny_patch16_224.onnx" ] || "$vit" export -c "$w/vit_tiny_patch16_224.safetensors" -o "$w/vit_tiny_patch16_224.onnx" >/dev/null
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'); cpu: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) vCPUs; load: $(cut -d' ' -f1-3 /proc/loadavg)"
runs=${RUNS:-5}; mid=$(( (runs + 1) / 2 ))
measure() {  # label, command...: median wall ms and peak RSS MB of $runs runs
  local label=$1; shift; local ts=() rs=()
  for i in $(seq "$runs"); do
    /usr/bin/time -o "$w/time.txt" -f "%e %M" "$@" >/dev/null 2>&1
    local o; o=$(tail -1 "$w/time.txt")
    ts+=("$(echo "$o" | awk '{print $1 * 1000}')"); rs+=("$(echo "$o" | awk '{print $2 / 1024}')")
  done
  printf '%-55s median %6.0f ms  peak RSS %5.0f MB  (runs: %s ms)\n' "$label" \
    "$(printf '%s\n' "${ts[@]}" | sort -n | sed -n ${mid}p)" "$(printf '%s\n' "${rs[@]}" | sort -n | sed -n ${mid}p)" "${ts[*]}"
}
ort_onnx() {  # model, dtype: ORT's file for it (empty when there is none)
  case "$1 $2" in
    "vit_tiny_patch16_224 fp32") echo "$w/vit_tiny_patch16_224.onnx" ;;   # vit export of the same weights
    "vit_small_patch16_224 fp32") echo "$ORT_DIR/vit_small_patch16_224.full.onnx" ;;   # the timm export
    *) [ -f "$ORT_DIR/$1.int8.onnx" ] && echo "$ORT_DIR/$1.int8.onnx" ;;   # quantize_dynamic (ort_quantize.py)
  esac
}
# each model and dtype: VitSharp's rows, then ORT's on the same model, so that both see the same moment of the machine
for m in vit_tiny_patch16_224 vit_small_patch16_224; do
  for d in fp32 int8; do
    f="$w/$m.safetensors"; [ $d = int8 ] && f="$w/$m.int8.safetensors"
    measure "vitsharp classify $m $d" "$vit" classify -c "$f" "$img"
    [ -n "${BASELINE:-}" ] && measure "  baseline $m $d" "$BASELINE" classify -c "$f" "$img"
    [ -n "${R2R:-}" ] && measure "  ReadyToRun publish $m $d" "$w/r2r/vit" classify -c "$f" "$img"
    measure "  vitsharp run (.npy input as ORT's) $m $d" "$vit" run -c "$f" -i "$w/input.npy" -o "$w/out.npy"
    o=$(ort_onnx $m $d || true)
    if [ -n "$o" ] && [ -f "$o" ]; then measure "  onnxruntime $m $d ($(basename "$o"))" node "$root/bench/peers/ort_cold.js" "$o" 2
    else echo "  onnxruntime $m $d: no ONNX file (int8: $ORT_DIR/$m.int8.onnx from ort_quantize.py, which needs Python onnxruntime)"; fi
  done
done
