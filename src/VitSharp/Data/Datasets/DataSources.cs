namespace VitSharp.Data.Datasets;

/// <summary>Opens a dataset from a path: a folder of idx files (MNIST, Fashion-MNIST), an image folder, or a tar archive.</summary>
public static class DataSources
{
    /// <summary>The decoder for encoded image files (JPEG, PNG, BMP, PNM through ImageCodecs); replaceable for tests.</summary>
    public static ImageDecoder Decoder { get; set; } = (bytes, name) => Codecs.ImageCodecs.Decode(bytes, name).To8Bit();

    public static bool IsIdxFolder(string path) =>
        Directory.Exists(path) && Directory.EnumerateFiles(path, "*-idx3-ubyte*").Any();

    /// <summary>The <paramref name="split"/> ("train", "test", "val") of the data at <paramref name="path"/>;
    /// null split: the path itself holds the class folders.</summary>
    public static IImageDataset Open(string path, string? split)
    {
        if (string.IsNullOrEmpty(path)) throw new VitSharpException("no data path given (set data.path or pass --data)");
        if (IsIdxFolder(path)) return IdxDataset.FromFolder(path, train: split is null or "train");
        return FileListDataset.Open(path, split, Decoder);
    }
}
