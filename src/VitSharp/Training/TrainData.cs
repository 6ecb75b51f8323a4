using VitSharp.Data.Datasets;

namespace VitSharp.Training;

/// <summary>The training and validation sets a <see cref="DataConfig"/> describes, and the augmentation and loader it
/// asks for.</summary>
public static class TrainData
{
    /// <summary>Opens the splits, takes the slices, then caches per <c>data.cache</c> (the training set first; in auto mode
    /// the validation set gets what is left of the bound).</summary>
    public static (IImageDataset Train, IImageDataset? Val) Open(DataConfig d, int seed)
    {
        d.Validate();
        IImageDataset train = DataSources.Open(d.Path, Split(d.TrainSplit));
        IImageDataset? val = null;
        if (!string.IsNullOrEmpty(d.ValSplit)) val = DataSources.Open(d.Path, d.ValSplit);
        else if (d.ValFraction > 0) (train, val) = Subset.Split(train, d.ValFraction, seed);
        if (d.TrainPerClass > 0) train = Subset.PerClass(train, d.TrainPerClass);
        if (val is not null && d.ValPerClass > 0) val = Subset.PerClass(val, d.ValPerClass);
        if (val is not null && !val.Classes.SequenceEqual(train.Classes))
            throw new VitSharpException($"{d.Path}: the validation classes ({val.Classes.Count}) differ from the training classes ({train.Classes.Count})");
        var mode = CachedDataset.ParseMode(d.Cache);
        long bound = CachedDataset.DefaultBoundBytes;
        train = CachedDataset.Apply(train, mode, d.Workers, bound);
        if (val is not null)
            val = CachedDataset.Apply(val, mode, d.Workers, bound - (train is CachedDataset c ? c.Bytes : 0));
        return (train, val);
    }

    /// <summary>The training augmentation of <paramref name="d"/> for a model of <paramref name="imageSize"/>² ×
    /// <paramref name="channels"/>: crop padding and flip, or the named recipe (with its mean and std), plus
    /// <c>data.auto_augment</c> and <c>data.random_erasing</c>. Its <see cref="Augmentation.ForEvaluation"/> is the
    /// evaluation transform.</summary>
    public static Augmentation Augmentation(DataConfig d, int imageSize, int channels)
    {
        d.Validate();
        var aug = new Augmentation
        {
            ImageSize = imageSize, SourceSize = d.SourceSize, Channels = channels, Mean = d.Mean, Std = d.Std, CropPadding = d.CropPadding, HorizontalFlip = d.HorizontalFlip,
            AutoAugment = AutoAugment.Parse(d.AutoAugment),
            RandomErasing = d.RandomErasing > 0 ? new RandomErasing(d.RandomErasing, RandomErasing.ParseMode(d.RandomErasingMode)) : null,
        };
        if (d.Recipe is { } recipe)
        {
            Data.Transforms.PreprocessRecipe r;
            try { r = Data.Transforms.PreprocessRecipe.Named(recipe, imageSize); }
            catch (ArgumentException e) { throw new VitSharpException("data.recipe: " + e.Message, e); }
            aug = aug with { Recipe = r, Mean = r.Mean, Std = r.Std };
        }
        aug.Validate();
        return aug;
    }

    /// <summary>A loader with <c>data.workers</c> and <c>data.prefetch</c>: shuffled, full batches only, for training;
    /// in order, every image, for evaluation. <paramref name="rank"/> of <paramref name="world"/>: data parallelism, this rank's slice of each global batch of
    /// world × <paramref name="batchSize"/> (<see cref="DataLoader.ShardRank"/>; training only).</summary>
    public static DataLoader Loader(DataConfig d, IImageDataset data, int batchSize, Augmentation aug, bool training, int seed, int rank = 0, int world = 1) =>
        new(data, batchSize, training ? aug : aug.ForEvaluation(), shuffle: training, dropLast: training, seed, d.Workers, d.Prefetch)
            { ShardRank = rank, ShardCount = world };

    private static string? Split(string s) => string.IsNullOrEmpty(s) ? null : s;
}
