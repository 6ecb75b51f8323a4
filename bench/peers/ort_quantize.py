# ONNX Runtime's own dynamic int8 quantisation of a model, the peer for `vit quantize` (run where the Python
# onnxruntime package is, e.g. the GPU machine): per-channel symmetric int8 weights of MatMul/Gemm, dynamic
# per-tensor uint8 activations. PyTorch's export feeds each MatMul's weight through Transpose (and Identity) nodes,
# which quantize_dynamic leaves alone (it quantises initializer weights only), so those chains are folded into plain
# initializers first (and initializers listed as graph inputs become plain constants); the script then checks that every large MatMul became a MatMulInteger.
# Usage: python3 ort_quantize.py in.onnx out.int8.onnx
import sys, collections
import numpy as np, onnx
from onnx import numpy_helper
from onnxruntime.quantization import quantize_dynamic, QuantType

src, dst = sys.argv[1], sys.argv[2]
m = onnx.load(src)
g = m.graph
inits = {t.name: t for t in g.initializer}
producer = {o: n for n in g.node for o in n.output}
consumers = collections.Counter(i for n in g.node for i in n.input)

def constant(name):
    """The value of `name` if it is an initializer reached through Identity/Transpose nodes only, else None."""
    if name in inits: return numpy_helper.to_array(inits[name])
    n = producer.get(name)
    if n is None or n.op_type not in ("Identity", "Transpose"): return None
    v = constant(n.input[0])
    if v is None: return None
    if n.op_type == "Transpose":
        perm = next((list(a.ints) for a in n.attribute if a.name == "perm"), None)
        v = np.transpose(v, perm)
    return v

# Initializers that are also graph inputs count as inputs (overridable), and quantize_dynamic skips them: make them constants.
names = set(inits)
for i in [i for i in g.input if i.name in names]: g.input.remove(i)
folded = 0
for n in g.node:
    if n.op_type != "MatMul" or n.input[1] in inits: continue
    v = constant(n.input[1])
    if v is None or v.size < 4096: continue
    name = f"{n.name or n.output[0]}.weight_folded"
    g.initializer.append(numpy_helper.from_array(np.ascontiguousarray(v), name))
    n.input[1] = name
    folded += 1
# drop the nodes and initializers nothing reads any more
for _ in range(3):
    used = collections.Counter(i for n in g.node for i in n.input) + collections.Counter(o.name for o in g.output)
    dead = [n for n in g.node if n.op_type in ("Identity", "Transpose") and all(used[o] == 0 for o in n.output)]
    for n in dead: g.node.remove(n)
used = collections.Counter(i for n in g.node for i in n.input)
for t in [t for t in g.initializer if used[t.name] == 0]: g.initializer.remove(t)
pre = dst + ".folded.onnx"
onnx.save(m, pre)
quantize_dynamic(pre, dst, weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=["MatMul", "Gemm"])
q = onnx.load(dst)
ops = collections.Counter(n.op_type for n in q.graph.node)
weights = sum(t.ByteSize() for t in q.graph.initializer)
print(f"folded {folded} weight chains; quantized {src} -> {dst}: MatMulInteger {ops['MatMulInteger']}, MatMul {ops['MatMul']}, "
      f"Gemm {ops['Gemm']}, initializers {weights / 1e6:.1f} MB")
