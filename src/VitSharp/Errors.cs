namespace VitSharp;

/// <summary>Base of every error VitSharp raises for bad input (files, shapes, options). Never for its own bugs.</summary>
public class VitSharpException : Exception
{
    public VitSharpException(string message, Exception? inner = null) : base(message, inner) { }
}

/// <summary>A checkpoint file that is missing, truncated, corrupt, or lacks a tensor the model needs.</summary>
public sealed class CheckpointException : VitSharpException
{
    public CheckpointException(string file, string message, string? tensor = null, Exception? inner = null)
        : base(tensor is null ? $"{file}: {message}" : $"{file}: tensor '{tensor}': {message}", inner)
    {
        File = file;
        TensorName = tensor;
        Detail = message;
    }

    /// <summary>What is wrong, without the file and tensor names.</summary>
    public string Detail { get; }

    public string File { get; }
    public string? TensorName { get; }
}

/// <summary>A model that the target checkpoint format cannot express: names the file to be written, the format, and
/// every feature it lacks (e.g. "npz cannot express a distillation token (DeiT)").</summary>
public sealed class ConversionException : VitSharpException
{
    public ConversionException(string file, string format, IReadOnlyList<string> features)
        : base($"{file}: the {format} format cannot express {string.Join("; ", features)}")
    {
        File = file;
        Format = format;
        Features = features;
    }

    public string File { get; }
    public string Format { get; }
    public IReadOnlyList<string> Features { get; }
}

/// <summary>An input array whose shape or contents do not fit the model.</summary>
public sealed class InputException : VitSharpException
{
    public InputException(string message) : base(message) { }
}

/// <summary>Error text helpers.</summary>
public static class ErrorText
{
    /// <summary>A message on one line: line breaks become spaces, and a long quoted stretch of the input (as
    /// System.Text.Json quotes the rest of a file after a bad literal) is cut to its first 24 characters.</summary>
    public static string OneLine(string message)
    {
        var m = System.Text.RegularExpressions.Regex.Replace(message, "'([^']{24})[^']{8,}'", "'$1…'");
        return m.ReplaceLineEndings(" ");
    }
}
