namespace VitSharp.Data.Codecs;

/// <summary>A file that is not a valid image of its format (truncated, corrupt, hostile or unsupported); names the file.</summary>
public sealed class ImageFormatException : VitSharpException
{
    public string FileName { get; }
    public ImageFormatException(string source, string problem, Exception? inner = null)
        : base($"{source}: {problem}", inner) => FileName = source;
}
