using VitSharp.Tensors;

namespace VitSharp.Checkpoints;

/// <summary>
/// A named array read from a checkpoint, always widened to float32 on the host. One read from a mapped file
/// (<see cref="MappedFile"/>) holds no floats until <see cref="Data"/> is first read: consumers that can read the
/// source directly (a model's parameter load, int8 and weight packing) do so through <see cref="CopyTo"/> and
/// <see cref="Source"/>, so the file's pages are the only copy.
/// </summary>
public sealed record HostArray(int[] Shape, float[] Data)
{
    private float[]? _data = Data;
    private readonly HostArraySource? _source;

    /// <summary>An array whose values come from <paramref name="source"/> (decoded on first use of <see cref="Data"/>).</summary>
    internal HostArray(int[] shape, HostArraySource source) : this(shape, (float[])null!)
    {
        if (source.Count != Tensors.Shape.Count(shape)) throw new ArgumentException($"{source.Count} values do not fill {Tensors.Shape.Format(shape)}");
        _source = source;
    }

    /// <summary>The values (decoded from the source and kept, for an array read from a mapped file).</summary>
    public float[] Data
    {
        get => _data ??= Materialize();
        init => _data = value;
    }

    /// <summary>Where the values come from while <see cref="Data"/> has not been read (null: they are in <see cref="Data"/>).</summary>
    internal HostArraySource? Source => _data is null ? _source : null;

    /// <summary>Whether the values are held as floats (false: they are still only in the source, e.g. the mapped file).</summary>
    public bool IsMaterialized => _data is not null;

    /// <summary>Writes the values into <paramref name="destination"/> (Count floats) without keeping a copy.</summary>
    public void CopyTo(Span<float> destination)
    {
        if (destination.Length != Count) throw new ArgumentException($"copy of {this} into {destination.Length} floats");
        if (_data is not null) _data.CopyTo(destination);
        else _source!.CopyTo(destination);
    }

    private float[] Materialize()
    {
        var o = new float[Count];
        _source!.CopyTo(o);
        return o;
    }

    public long Count => _data?.LongLength ?? Tensors.Shape.Count(Shape);
    public override string ToString() => Tensors.Shape.Format(Shape);

    /// <summary>Same data, another shape with the same element count.</summary>
    public HostArray Reshape(params int[] shape)
    {
        if (Tensors.Shape.Count(shape) != Count)
            throw new ArgumentException($"cannot reshape {this} to {Tensors.Shape.Format(shape)}");
        return Source is { } s ? new HostArray(shape, s) : new HostArray(shape, Data);
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

/// <summary>Values of a <see cref="HostArray"/> that are not held as floats: decoded into the caller's memory on demand.</summary>
internal abstract class HostArraySource
{
    public abstract long Count { get; }
    public abstract void CopyTo(Span<float> destination);
    /// <summary>The mapped file the values are read from, if any (holders that outlive the checkpoint take a lease on it).</summary>
    public abstract MappedFile? File { get; }
}

/// <summary>A tensor's bytes in a mapped safetensors file, in its stored dtype.</summary>
internal sealed unsafe class MappedTensor(MappedFile file, long offset, long bytes, string dtype, long count) : HostArraySource
{
    public override long Count => count;
    public override MappedFile File => file;
    public string DType => dtype;
    /// <summary>Where the bytes start in the file, and how many.</summary>
    public long Offset => offset;
    public long ByteLength => bytes;
    public ReadOnlySpan<byte> Bytes => file.Bytes(offset, bytes);
    public override void CopyTo(Span<float> destination) => SafeTensors.Decode(dtype, Bytes, destination);

    /// <summary>The stored F32 values themselves (no copy), when the dtype is F32 and the address 4-byte aligned.</summary>
    public bool TryF32(out ReadOnlySpan<float> values)
    {
        var b = Bytes;
        fixed (byte* p = b)
            if (dtype != "F32" || ((nint)p & 3) != 0) { values = default; return false; }
        values = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(b);
        return true;
    }
}

/// <summary>An int8 weight's floats, q · scale per output channel, computed from the mapped int8 values on demand.</summary>
internal sealed class DequantizedTensor(MappedTensor values, float[] scales, int n, int k) : HostArraySource
{
    public override long Count => (long)n * k;
    public override MappedFile File => values.File;
    public MappedTensor Values => values;
    public float[] Scales => scales;
    public override void CopyTo(Span<float> destination)
    {
        var q = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, sbyte>(values.Bytes);
        for (int r = 0; r < n; r++)
        {
            float s = scales[r];
            for (int i = 0; i < k; i++) destination[r * k + i] = q[r * k + i] * s;
        }
    }
}
