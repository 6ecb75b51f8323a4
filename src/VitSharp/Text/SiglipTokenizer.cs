using System.Text;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace VitSharp.Text;

/// <summary>
/// SigLIP's SentencePiece tokenizer (spiece.model), as transformers' SiglipTokenizer computes it, on
/// Microsoft.ML.Tokenizers' SentencePiece: lower-cased (do_lower_case), ASCII punctuation removed, whitespace runs
/// made one space and the ends trimmed (big_vision's canonicalize_text), encoded with the model's own normalizer and a
/// "▁" before the text, &lt;/s&gt; appended, truncated to <see cref="ContextLength"/> (the &lt;/s&gt; kept) and padded to
/// it with the pad id: SigLIP's text tower pools the last position, so every row has the full length.
/// </summary>
public sealed partial class SiglipTokenizer : ITextTokenizer
{
    private readonly SentencePieceTokenizer _sp;
    private readonly int _spaceId;

    private SiglipTokenizer(SentencePieceTokenizer sp, int contextLength, string source)
    {
        _sp = sp;
        ContextLength = contextLength;
        var v = sp.Vocabulary;
        EosId = v.TryGetValue("</s>", out var eos) ? eos : sp.EndOfSentenceId;
        PadId = EosId; // transformers' SiglipTokenizer pads with </s> (its pad_token)
        _spaceId = v.TryGetValue("▁", out var sp1) ? sp1 : -1;
        if (EosId < 0) throw new VitSharpException($"{source}: the SentencePiece model has no </s>");
    }

    public int ContextLength { get; }
    public int PadId { get; }
    public int EosId { get; }

    /// <summary>A SentencePiece model file (a serialized ModelProto: BPE or unigram).</summary>
    public static SiglipTokenizer FromModel(string path, int contextLength = 64)
    {
        if (!File.Exists(path)) throw new VitSharpException($"{path}: file not found");
        try
        {
            using var s = File.OpenRead(path);
            return new SiglipTokenizer(SentencePieceTokenizer.Create(s, false, false), contextLength, path);
        }
        catch (Exception e) when (e is not VitSharpException and (ArgumentException or InvalidOperationException or FormatException or IOException or NotSupportedException or IndexOutOfRangeException))
        {
            throw new VitSharpException($"{path}: not a SentencePiece model ({ErrorText.OneLine(e.Message)})", e);
        }
    }

    /// <summary>A Hugging Face folder's spiece.model (tokenizer_config.json's model_max_length, else 64).</summary>
    public static SiglipTokenizer FromFolder(string dir)
    {
        var path = Path.Combine(dir, "spiece.model");
        if (!File.Exists(path)) throw new VitSharpException($"{dir}: no spiece.model (SigLIP's SentencePiece model)");
        int context = 64;
        var cfgPath = Path.Combine(dir, "tokenizer_config.json");
        if (File.Exists(cfgPath) && ZeroShotJson.Int(cfgPath, "model_max_length") is int m && m > 0 && m < 100_000) context = m;
        return FromModel(path, context);
    }

    [GeneratedRegex(@"\s+")]
    private static partial Regex Whitespace();

    /// <summary>big_vision's canonicalize_text after lower-casing: Python's string.punctuation removed, whitespace runs
    /// → one space, trimmed.</summary>
    public static string Canonicalize(string text)
    {
        var sb = new StringBuilder(text.Length);
        foreach (var ch in text.ToLowerInvariant())
        {
            bool punctuation = ch is > ' ' and < (char)127 && !char.IsAsciiLetterOrDigit(ch);
            if (!punctuation) sb.Append(ch);
        }
        return Whitespace().Replace(sb.ToString(), " ").Trim();
    }

    /// <summary>The SentencePiece ids of a text, without &lt;/s&gt; and untruncated.</summary>
    public IReadOnlyList<int> EncodeRaw(string text)
    {
        var t = Canonicalize(text);
        if (t.Length == 0) return _spaceId >= 0 ? [_spaceId] : [];
        return _sp.EncodeToIds(t, addBeginningOfSentence: false, addEndOfSentence: false);
    }

    public int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = EncodeRaw(text);
        int keep = Math.Min(ids.Count, ContextLength - 1);
        var o = new int[ContextLength];
        for (int i = 0; i < keep; i++) o[i] = ids[i];
        o[keep] = EosId;
        for (int i = keep + 1; i < o.Length; i++) o[i] = PadId;
        return o;
    }
}
