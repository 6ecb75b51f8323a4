# ONNX Runtime's own dynamic int8 quantisation of a model, the peer for `vit quantize` (run where the Python
# onnxruntime package is, e.g. the GPU machine): per-channel symmetric int8 weights of MatMul/Gemm, dynamic
# per-tensor uint8 activations. Usage: python3 ort_quantize.py in.onnx out.int8.onnx
import sys
from onnxruntime.quantization import quantize_dynamic, QuantType

src, dst = sys.argv[1], sys.argv[2]
quantize_dynamic(src, dst, weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=["MatMul", "Gemm"])
print(f"quantized {src} -> {dst}")
