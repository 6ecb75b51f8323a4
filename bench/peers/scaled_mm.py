# FP8 peer check for the GPU machine: one torch._scaled_mm (E4M3 x E4M3 -> bf16, per-tensor scales, fast accumulation),
# run by gpu_cct_cifar.sh under CUBLASLT_LOG_LEVEL=5 so that cuBLASLt logs the call PyTorch makes beside ours.
import torch
m, n, k = 256, 256, 256
a = torch.randn(m, k, device="cuda").to(torch.float8_e4m3fn)
b = torch.randn(n, k, device="cuda").to(torch.float8_e4m3fn).t()  # column-major k x n
one = torch.ones((), device="cuda")
y = torch._scaled_mm(a, b, scale_a=one, scale_b=one, out_dtype=torch.bfloat16, use_fast_accum=True)
torch.cuda.synchronize()
ref = a.float() @ b.float()
print("torch", torch.__version__, "scaled_mm ok, rel", ((y.float() - ref).norm() / ref.norm()).item())
