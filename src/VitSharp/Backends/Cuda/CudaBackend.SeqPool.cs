using VitSharp.Tensors;

namespace VitSharp.Backends.Cuda;

/// <summary>CCT's sequence pooling on the GPU (Kernels/seqpool.cu): one block per image, tokens and scores in the compute
/// type, the softmax weights F32, sums in fp32. No host synchronisation, no allocation: capture-safe.</summary>
public sealed unsafe partial class CudaBackend
{
    public void SeqPool(Tensor x, Tensor scores, Tensor weights, Tensor y)
    {
        CheckCompute(x, scores, y);
        HostOps.CheckSeqPool("SeqPool", x, scores, weights, y);
        if (x.Dim(0) > 65535) throw new NotSupportedException($"SeqPool: batch {x.Dim(0)} (one block per image, at most 65535)");
        Launch("seqpool.cu", "seqpool_" + _suffix, (uint)x.Dim(0), 1, 1, 256, 1, 1, 0,
            [x.Pointer, scores.Pointer, weights.Pointer, y.Pointer, x.Dim(1), x.Dim(2)]);
    }

    public void SeqPoolBackward(Tensor dy, Tensor x, Tensor weights, Tensor dx, Tensor dscores)
    {
        CheckCompute(dy, x, dx, dscores);
        HostOps.CheckSeqPool("SeqPoolBackward", x, dscores, weights, dy);
        if (dx.Length != x.Length) throw new ArgumentException($"SeqPoolBackward: dx {dx} for {x}");
        if (x.Dim(0) > 65535) throw new NotSupportedException($"SeqPoolBackward: batch {x.Dim(0)} (one block per image, at most 65535)");
        Launch("seqpool.cu", "seqpool_backward_" + _suffix, (uint)x.Dim(0), 1, 1, 256, 1, 1, 0,
            [dy.Pointer, x.Pointer, weights.Pointer, dx.Pointer, dscores.Pointer, x.Dim(1), x.Dim(2)]);
    }
}
