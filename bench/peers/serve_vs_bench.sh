#!/usr/bin/env bash
# vit serve under a bounded loopback load (32 clients) beside `vit bench` batch throughput of the same model, same
# machine, same session: the shipped default model, then a seeded ViT-Ti/16 (vit init). Prints the machine, the load
# average before and after, and one RESULT line per measurement (docs/BENCHMARKS.md, "Serving").
# Usage: bash bench/peers/serve_vs_bench.sh [SECONDS]   (from the repository root; builds Release first)
set -euo pipefail
SECONDS_PER_RUN=${1:-30}
dotnet build -c Release src/VitSharp.Cli -v q -nologo >/dev/null
dotnet build -c Release bench/VitSharp.Bench -v q -nologo >/dev/null
VIT=src/VitSharp.Cli/bin/Release/net10.0/vit
BENCH="dotnet bench/VitSharp.Bench/bin/Release/net10.0/VitSharp.Bench.dll"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')  commit: $(git rev-parse --short HEAD)"
echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), $(free -g | awk '/Mem:/ {print $2}') GiB"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
$VIT init --model vit_tiny_patch16_224 --seed 0 -o "$TMP/vit_ti16_seed0.safetensors" 2>/dev/null
for ck in default "$TMP/vit_ti16_seed0.safetensors"; do
  # serve's default --max-batch is 16: the bench batch that matches what a full dynamic batch runs
  $VIT bench --checkpoint "$ck" --batch-size 16 --iters 5 --rounds 5
  $VIT bench --checkpoint "$ck" --batch-size 1 --iters 20 --rounds 5
  $BENCH serve --checkpoint "$ck" --clients 32 --seconds "$SECONDS_PER_RUN" --warmup 5
  echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
done
