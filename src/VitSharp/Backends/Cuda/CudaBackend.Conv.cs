using VitSharp.Tensors;

namespace VitSharp.Backends.Cuda;

/// <summary>
/// CCT's convolutional tokenizer on the GPU (Kernels/conv.cu): the 3×3 unfold, max pooling and their backwards, in the
/// compute type with fp32 sums. The convolution is the unfold plus the cuBLASLt product (IBackend.Conv3x3's default
/// body). Gathers only (no atomics), no host synchronisation, no allocation: capture-safe for the training step's graph.
/// </summary>
public sealed unsafe partial class CudaBackend
{
    public void Im2Col3x3(Tensor x, Tensor cols, int height, int width, bool channelsFirst)
    {
        CheckCompute(x, cols);
        int batch = x.Dim(0), c = channelsFirst ? x.Dim(1) : x.Dim(-1);
        if ((channelsFirst ? x.Rank != 4 || x.Dim(2) != height || x.Dim(3) != width : x.Length != (long)batch * height * width * c)
            || cols.Length != (long)batch * height * width * c * 9)
            throw new ArgumentException($"Im2Col3x3: {x} ({height}×{width}) into {cols}");
        LaunchGridStride("conv.cu", "im2col3x3_" + _suffix, cols.Length, [x.Pointer, cols.Pointer, batch, c, height, width, channelsFirst ? 1 : 0]);
    }

    public void MaxPool3x3s2(Tensor x, Tensor y, int height, int width)
    {
        CheckCompute(x, y);
        int batch = x.Dim(0), c = x.Dim(-1);
        if (x.Length != (long)batch * height * width * c || y.Length != (long)batch * HostOps.PooledSize(height) * HostOps.PooledSize(width) * c)
            throw new ArgumentException($"MaxPool3x3s2: {x} ({height}×{width}) into {y}");
        LaunchGridStride("conv.cu", "maxpool3x3s2_" + _suffix, y.Length, [x.Pointer, y.Pointer, batch, height, width, c]);
    }

    public void MaxPool3x3s2Backward(Tensor dy, Tensor x, Tensor dx, int height, int width)
    {
        CheckCompute(dy, x, dx);
        int batch = x.Dim(0), c = x.Dim(-1);
        if (x.Length != (long)batch * height * width * c || dx.Length != x.Length
            || dy.Length != (long)batch * HostOps.PooledSize(height) * HostOps.PooledSize(width) * c)
            throw new ArgumentException($"MaxPool3x3s2Backward: dy {dy}, x {x} ({height}×{width}) -> {dx}");
        LaunchGridStride("conv.cu", "maxpool3x3s2_backward_" + _suffix, dx.Length, [dy.Pointer, x.Pointer, dx.Pointer, batch, height, width, c]);
    }

    public void Im2Col3x3Backward(Tensor dcols, Tensor dx, int height, int width)
    {
        CheckCompute(dcols, dx);
        int batch = dx.Dim(0), c = dx.Dim(-1);
        if (dx.Length != (long)batch * height * width * c || dcols.Length != dx.Length * 9)
            throw new ArgumentException($"Im2Col3x3Backward: {dcols} -> {dx} ({height}×{width})");
        LaunchGridStride("conv.cu", "col2im3x3_" + _suffix, dx.Length, [dcols.Pointer, dx.Pointer, batch, c, height, width]);
    }
}
