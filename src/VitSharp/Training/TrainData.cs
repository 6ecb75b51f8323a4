using VitSharp.Data.Datasets;

namespace VitSharp.Training;

/// <summary>The training and validation sets a <see cref="DataConfig"/> describes.</summary>
public static class TrainData
{
    public static (IImageDataset Train, IImageDataset? Val) Open(DataConfig d, int seed)
    {
        IImageDataset train = DataSources.Open(d.Path, Split(d.TrainSplit));
        IImageDataset? val = null;
        if (!string.IsNullOrEmpty(d.ValSplit)) val = DataSources.Open(d.Path, d.ValSplit);
        else if (d.ValFraction > 0) (train, val) = Subset.Split(train, d.ValFraction, seed);
        if (d.TrainPerClass > 0) train = Subset.PerClass(train, d.TrainPerClass);
        if (val is not null && d.ValPerClass > 0) val = Subset.PerClass(val, d.ValPerClass);
        if (val is not null && !val.Classes.SequenceEqual(train.Classes))
            throw new VitSharpException($"{d.Path}: the validation classes ({val.Classes.Count}) differ from the training classes ({train.Classes.Count})");
        return (train, val);
    }

    private static string? Split(string s) => string.IsNullOrEmpty(s) ? null : s;
}
