using VitSharp.Tensors;

namespace VitSharp.Checkpoints;

/// <summary>A named array read from a checkpoint, always widened to float32 on the host.</summary>
public sealed record HostArray(int[] Shape, float[] Data)
{
    public long Count => Data.LongLength;
    public override string ToString() => Tensors.Shape.Format(Shape);

    /// <summary>Same data, another shape with the same element count.</summary>
    public HostArray Reshape(params int[] shape)
    {
        if (Tensors.Shape.Count(shape) != Data.LongLength)
            throw new ArgumentException($"cannot reshape {this} to {Tensors.Shape.Format(shape)}");
        return new HostArray(shape, Data);
    }

    /// <summary>A 2-D transpose: (r, c) → (c, r).</summary>
    public HostArray Transpose2D()
    {
        if (Shape.Length != 2) throw new ArgumentException($"Transpose2D needs a matrix, got {this}");
        int r = Shape[0], c = Shape[1];
        var o = new float[Data.Length];
        for (int i = 0; i < r; i++)
            for (int j = 0; j < c; j++) o[(long)j * r + i] = Data[(long)i * c + j];
        return new HostArray([c, r], o);
    }

    /// <summary>Generic axis permutation (numpy transpose).</summary>
    public HostArray Permute(params int[] axes)
    {
        int rank = Shape.Length;
        if (axes.Length != rank) throw new ArgumentException("permutation rank mismatch");
        var newShape = axes.Select(a => Shape[a]).ToArray();
        var srcStrides = new long[rank];
        long s = 1;
        for (int i = rank - 1; i >= 0; i--) { srcStrides[i] = s; s *= Shape[i]; }
        var o = new float[Data.Length];
        var idx = new int[rank];
        for (long n = 0; n < o.LongLength; n++)
        {
            long src = 0;
            for (int i = 0; i < rank; i++) src += idx[i] * srcStrides[axes[i]];
            o[n] = Data[src];
            for (int i = rank - 1; i >= 0; i--)
            {
                if (++idx[i] < newShape[i]) break;
                idx[i] = 0;
            }
        }
        return new HostArray(newShape, o);
    }

    public static HostArray Concat0(params HostArray[] parts)
    {
        var tail = parts[0].Shape[1..];
        foreach (var p in parts)
            if (!p.Shape[1..].SequenceEqual(tail)) throw new ArgumentException("concat shape mismatch");
        var data = parts.SelectMany(p => p.Data).ToArray();
        return new HostArray([parts.Sum(p => p.Shape[0]), .. tail], data);
    }
}
