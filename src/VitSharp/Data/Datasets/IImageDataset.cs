namespace VitSharp.Data.Datasets;

/// <summary>
/// A labelled image collection read on demand. <see cref="Load"/> must be safe to call from several threads at once:
/// the loader decodes and augments on worker threads.
/// </summary>
public interface IImageDataset
{
    int Count { get; }
    IReadOnlyList<string> Classes { get; }
    int Label(int index);
    Image Load(int index);
}

/// <summary>Turns an encoded file (JPEG, PNG, …) into pixels; the name is for error messages.</summary>
public delegate Image ImageDecoder(byte[] encoded, string name);

/// <summary>A view of some of another dataset's items, in the given order (train/validation splits, slices).</summary>
public sealed class Subset(IImageDataset inner, int[] indices) : IImageDataset
{
    public int Count => indices.Length;
    public IReadOnlyList<string> Classes => inner.Classes;
    public int Label(int index) => inner.Label(indices[index]);
    public Image Load(int index) => inner.Load(indices[index]);

    /// <summary>Splits off a validation fraction, shuffled by <paramref name="seed"/> so the split is reproducible.</summary>
    public static (Subset Train, Subset Val) Split(IImageDataset d, double valFraction, int seed)
    {
        var order = Enumerable.Range(0, d.Count).ToArray();
        new Random(seed).Shuffle(order);
        int nVal = (int)Math.Round(d.Count * valFraction);
        return (new Subset(d, order[nVal..]), new Subset(d, order[..nVal]));
    }

    /// <summary>At most <paramref name="perClass"/> items of each class, in the dataset's order.</summary>
    public static Subset PerClass(IImageDataset d, int perClass)
    {
        var counts = new int[d.Classes.Count];
        var keep = new List<int>();
        for (int i = 0; i < d.Count; i++)
            if (counts[d.Label(i)]++ < perClass) keep.Add(i);
        return new Subset(d, keep.ToArray());
    }
}
