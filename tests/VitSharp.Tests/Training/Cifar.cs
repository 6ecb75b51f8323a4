using VitSharp.Data.Datasets;

namespace VitSharp.Tests.Training;

/// <summary>Balanced CIFAR-10 slices read straight from ../shared/datasets/cifar10-jpeg.tar.gz (read once per test run).</summary>
public static class Cifar
{
    private static readonly Lazy<(FileListDataset Train, FileListDataset Test)> All = new(() =>
    {
        var tar = TestData.Shared("datasets", "cifar10-jpeg.tar.gz");
        return (FileListDataset.FromArchive(tar, "train", DataSources.Decoder), FileListDataset.FromArchive(tar, "test", DataSources.Decoder));
    });

    public static FileListDataset Train => All.Value.Train;
    public static FileListDataset Test => All.Value.Test;

    /// <summary>Images [from, from + count) of every class, in file-name order.</summary>
    public static Subset Slice(FileListDataset d, int from, int count)
    {
        var seen = new int[d.Classes.Count];
        var keep = new List<int>();
        for (int i = 0; i < d.Count; i++)
        {
            int k = seen[d.Label(i)]++;
            if (k >= from && k < from + count) keep.Add(i);
        }
        return new Subset(d, keep.ToArray());
    }
}
