using VitSharp.Data;
using VitSharp.Data.Codecs;

namespace VitSharp.Inference;

/// <summary>An image file that could not be read: the file and a one-line reason (the decoder's message).</summary>
public sealed record ImageFileError(string File, string Message);

/// <summary>Files of one batch: the images that decoded, in file order, with their files, and the files that did not.</summary>
public sealed record DecodedImages(IReadOnlyList<string> Files, IReadOnlyList<Image> Images, IReadOnlyList<ImageFileError> Errors);

/// <summary>
/// Decoding many image files for a batch command (`vit classify`, `vit run` over a folder): a file that does not decode
/// is recorded with its reason and the others still decode, so one bad file never stops the rest.
/// </summary>
public static class ImageFiles
{
    /// <summary>Decodes each file; a damaged, unreadable or unknown one becomes an <see cref="ImageFileError"/> instead
    /// of an exception. Other exceptions (bugs) still propagate.</summary>
    public static DecodedImages Decode(IEnumerable<string> files, DecodeOptions? options = null)
    {
        var ok = new List<string>();
        var images = new List<Image>();
        var errors = new List<ImageFileError>();
        foreach (var f in files)
        {
            try
            {
                images.Add(ImageCodecs.Decode(f, options));
                ok.Add(f);
            }
            catch (Exception e) when (e is VitSharpException or IOException or UnauthorizedAccessException)
            {
                errors.Add(new ImageFileError(f, OneLine(e, f)));
            }
        }
        return new DecodedImages(ok, images, errors);
    }

    /// <summary>Decodes the files in batches of <paramref name="batchSize"/>, lazily: at most one batch of decoded
    /// images is held at a time.</summary>
    public static IEnumerable<DecodedImages> DecodeInBatches(IReadOnlyList<string> files, int batchSize, DecodeOptions? options = null)
    {
        foreach (var chunk in files.Chunk(Math.Max(1, batchSize)))
            yield return Decode(chunk, options);
    }

    // The message on one line, naming the file when the exception's message does not already.
    private static string OneLine(Exception e, string file)
    {
        var m = e.Message.ReplaceLineEndings(" ").Trim();
        return m.Contains(file, StringComparison.Ordinal) || m.Contains(Path.GetFileName(file), StringComparison.Ordinal) ? m : $"{file}: {m}";
    }
}
