# ONNX Runtime's own dynamic int8 quantisation of a model, the peer for `vit quantize` (run where the Python
# onnxruntime package is, e.g. the GPU machine): per-channel symmetric int8 weights of MatMul/Gemm, dynamic
# per-tensor uint8 activations. The export feeds MatMul through Transpose/Identity nodes, which quantize_dynamic skips,
# so ORT's pre-processing (constant folding, shape inference) runs first; the script then checks that every large
# MatMul became a MatMulInteger. Usage: python3 ort_quantize.py in.onnx out.int8.onnx
import sys, collections, onnx
from onnxruntime.quantization import quantize_dynamic, QuantType
from onnxruntime.quantization.shape_inference import quant_pre_process

src, dst = sys.argv[1], sys.argv[2]
pre = dst + ".pre.onnx"
quant_pre_process(src, pre, skip_symbolic_shape=True)
quantize_dynamic(pre, dst, weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=["MatMul", "Gemm"])
m = onnx.load(dst)
ops = collections.Counter(n.op_type for n in m.graph.node)
weights = sum(t.ByteSize() for t in m.graph.initializer)
print(f"quantized {src} -> {dst}: MatMulInteger {ops['MatMulInteger']}, MatMul {ops['MatMul']}, Gemm {ops['Gemm']}, "
      f"ConvInteger {ops['ConvInteger']}, initializers {weights / 1e6:.1f} MB")
