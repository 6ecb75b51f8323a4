namespace VitSharp.Tensors;

/// <summary>
/// A dense row-major tensor: shape, dtype and an element offset into a <see cref="Storage"/> on some device.
/// Views share storage and do not own it. Only host F32 tensors expose spans; device tensors are reached through a backend.
/// </summary>
public sealed unsafe class Tensor : IDisposable
{
    private readonly bool _ownsStorage;

    public Tensor(int[] shape, DType dtype, Storage storage, long offset = 0, bool ownsStorage = true)
    {
        foreach (var d in shape) if (d < 0) throw new ArgumentException($"negative dimension in shape {Tensors.Shape.Format(shape)}");
        Shape = shape;
        DType = dtype;
        Storage = storage;
        Offset = offset;
        Length = Tensors.Shape.Count(shape);
        if ((offset + Length) * dtype.SizeOf() > storage.Bytes)
            throw new ArgumentException($"tensor {Tensors.Shape.Format(shape)} at offset {offset} exceeds its storage");
        _ownsStorage = ownsStorage;
    }

    public int[] Shape { get; }
    public DType DType { get; }
    public Storage Storage { get; }
    public long Offset { get; }
    public long Length { get; }
    public Device Device => Storage.Device;
    public int Rank => Shape.Length;
    public int Dim(int axis) => Shape[axis < 0 ? Shape.Length + axis : axis];

    /// <summary>Address of the first element (host or device).</summary>
    public nint Pointer => Storage.Pointer + (nint)(Offset * DType.SizeOf());

    public static Tensor Host(params int[] shape) => Host(shape, DType.F32);

    public static Tensor Host(int[] shape, DType dtype) =>
        new(shape, dtype, new HostStorage(Tensors.Shape.Count(shape) * dtype.SizeOf()));

    public static Tensor FromArray(float[] data, params int[] shape)
    {
        if (Tensors.Shape.Count(shape) != data.Length)
            throw new ArgumentException($"{data.Length} values do not fill shape {Tensors.Shape.Format(shape)}");
        var t = Host(shape);
        data.AsSpan().CopyTo(t.Span);
        return t;
    }

    /// <summary>The elements of a host F32 tensor.</summary>
    public Span<float> Span
    {
        get
        {
            if (!Device.IsCpu || DType != DType.F32)
                throw new InvalidOperationException($"Span needs a host F32 tensor, this one is {DType} on {Device}");
            return new Span<float>((float*)Pointer, checked((int)Length));
        }
    }

    public float* Data
    {
        get
        {
            if (!Device.IsCpu || DType != DType.F32)
                throw new InvalidOperationException($"Data needs a host F32 tensor, this one is {DType} on {Device}");
            return (float*)Pointer;
        }
    }

    /// <summary>A view of the same storage with another shape (same element count unless an offset is given).</summary>
    public Tensor View(params int[] shape)
    {
        if (Tensors.Shape.Count(shape) != Length)
            throw new ArgumentException($"cannot view {Tensors.Shape.Format(Shape)} as {Tensors.Shape.Format(shape)}");
        return View(shape, 0);
    }

    /// <summary>A view of part of this tensor: <paramref name="shape"/> starting <paramref name="elementOffset"/> elements in.</summary>
    public Tensor View(int[] shape, long elementOffset)
    {
        var n = Tensors.Shape.Count(shape);
        if (elementOffset < 0 || elementOffset + n > Length)
            throw new ArgumentException($"view {Tensors.Shape.Format(shape)} at {elementOffset} exceeds {this}");
        return new Tensor(shape, DType, Storage, Offset + elementOffset, ownsStorage: false);
    }

    public float[] ToArray() => Span.ToArray();

    public override string ToString() => $"Tensor{Tensors.Shape.Format(Shape)} {DType} {Device}";

    public void Dispose() { if (_ownsStorage) Storage.Dispose(); }
}

/// <summary>Helpers over tensor shapes: element counts and printing.</summary>
public static class Shape
{
    public static long Count(ReadOnlySpan<int> shape)
    {
        long n = 1;
        foreach (var d in shape) n *= d;
        return n;
    }

    public static string Format(ReadOnlySpan<int> shape) => "(" + string.Join(",", shape.ToArray()) + ")";

    public static bool Equal(ReadOnlySpan<int> a, ReadOnlySpan<int> b) => a.SequenceEqual(b);
}
