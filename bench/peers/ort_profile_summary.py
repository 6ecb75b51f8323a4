"""Summarise an ONNX Runtime profile (ort_profile.js): ms per forward by op type and by MatMul output shape, over the
last `reps` runs. usage: python3 ort_profile_summary.py TRACE.json [reps=20]"""
import collections
import json
import sys

events = json.load(open(sys.argv[1]))
reps = int(sys.argv[2]) if len(sys.argv) > 2 else 20
runs = [e for e in events if e.get("cat") == "Session" and e["name"] == "model_run"][-reps:]
print(f"{len(runs)} runs, median {sorted(e['dur'] for e in runs)[len(runs) // 2] / 1000:.1f} ms (profiling on)")
nodes = [e for e in events if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and e["ts"] >= runs[0]["ts"]]
by_op, calls, by_shape = collections.defaultdict(float), collections.Counter(), collections.defaultdict(float)
for e in nodes:
    op = e["args"].get("op_name", "?")
    by_op[op] += e["dur"]
    calls[op] += 1
    if op in ("MatMul", "FusedMatMul", "Gemm"):
        by_shape[str(e["args"].get("output_type_shape"))] += e["dur"]
total = sum(by_op.values())
for op, d in sorted(by_op.items(), key=lambda x: -x[1]):
    print(f"  {op:24s} {d / reps / 1000:7.2f} ms {100 * d / total:5.1f} %  {calls[op] // reps} calls")
print("MatMul by output shape:")
for k, d in sorted(by_shape.items(), key=lambda x: -x[1]):
    print(f"  {d / reps / 1000:7.2f} ms  {k}")
