namespace VitSharp.Data.Datasets;

/// <summary>Maps a dataset's class folders onto a model's label order (by name when the model has labels).</summary>
public static class LabelMap
{
    public static IImageDataset Align(IImageDataset d, IReadOnlyList<string>? modelLabels, int modelClasses)
    {
        if (modelLabels is not null && d.Classes.All(c => modelLabels.Contains(c)))
        {
            var map = d.Classes.Select(c => modelLabels.ToList().IndexOf(c)).ToArray();
            return map.Select((m, i) => m == i).All(x => x) && d.Classes.Count == modelLabels.Count ? d : new Remapped(d, map, modelLabels);
        }
        if (d.Classes.Count != modelClasses)
            throw new VitSharpException($"the data has {d.Classes.Count} classes but the model predicts {modelClasses}, and their names do not match");
        return d;
    }

    private sealed class Remapped(IImageDataset inner, int[] map, IReadOnlyList<string> classes) : IImageDataset
    {
        public int Count => inner.Count;
        public IReadOnlyList<string> Classes => classes;
        public int Label(int index) => map[inner.Label(index)];
        public Image Load(int index) => inner.Load(index);
    }
}
