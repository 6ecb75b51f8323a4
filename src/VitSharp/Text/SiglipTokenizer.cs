using System.Text;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace VitSharp.Text;

/// <summary>
/// SigLIP's SentencePiece tokenizer (spiece.model), as transformers' SiglipTokenizer computes it, on
/// Microsoft.ML.Tokenizers' SentencePiece: lower-cased (do_lower_case), ASCII punctuation removed, whitespace runs
/// made one space and the ends trimmed (big_vision's canonicalize_text), encoded with the model's own normalizer and a
/// "▁" before the text (special tokens in the text stay tokens), &lt;/s&gt; appended, truncated to <see cref="ContextLength"/> (the &lt;/s&gt; kept) and padded to
/// it with the pad id: SigLIP's text tower pools the last position, so every row has the full length.
/// </summary>
public sealed partial class SiglipTokenizer : ITextTokenizer
{
    private const string Underline = "\u2581";
    private readonly SentencePieceTokenizer _sp;
    private readonly int _spaceId;
    private readonly Dictionary<string, int> _special;

    private SiglipTokenizer(SentencePieceTokenizer sp, SentencePieceModelFile? file, int contextLength, string source)
    {
        _sp = sp;
        ContextLength = contextLength;
        var v = sp.Vocabulary;
        EosId = v.TryGetValue("</s>", out var eos) ? eos : file?.EosId ?? -1;
        if (EosId < 0) throw new VitSharpException($"{source}: the SentencePiece model has no </s>");
        PadId = EosId; // transformers' SiglipTokenizer pads with </s> (its pad_token)
        _spaceId = v.TryGetValue(Underline, out var sp1) ? sp1 : -1;
        int unk = v.TryGetValue("<unk>", out var u) ? u : file?.UnkId ?? -1;
        // transformers splits the text on its special tokens before anything else: they stay tokens.
        _special = new Dictionary<string, int> { ["</s>"] = EosId };
        if (unk >= 0) _special["<unk>"] = unk;
    }

    public int ContextLength { get; }
    public int PadId { get; }
    public int EosId { get; }

    /// <summary>A SentencePiece model file: read by <see cref="SentencePieceModelFile"/> and, for unigram models
    /// (SigLIP's), handed to Microsoft.ML.Tokenizers' unigram SentencePiece as its pieces, scores and normalizer
    /// settings with the dummy prefix off (transformers adds the "▁" itself); other model types load through
    /// Microsoft.ML.Tokenizers' own model reader.</summary>
    public static SiglipTokenizer FromModel(string path, int contextLength = 64)
    {
        if (!File.Exists(path)) throw new VitSharpException($"{path}: file not found");
        var m = SentencePieceModelFile.Read(path);
        try
        {
            SentencePieceTokenizer sp;
            if (m.ModelType == 1)
                sp = SentencePieceTokenizer.Create(m.Pieces.Select(p => (p.Piece, p.Score)), m.UnkId, false, false,
                    m.PrecompiledCharsMap.Length > 0 ? m.PrecompiledCharsMap : default, addDummyPrefix: false,
                    escapeWhiteSpaces: m.EscapeWhitespaces, treatWhitespaceAsSuffix: m.TreatWhitespaceAsSuffix, byteFallback: m.ByteFallback);
            else
            {
                using var s = File.OpenRead(path);
                sp = SentencePieceTokenizer.Create(s, false, false);
            }
            return new SiglipTokenizer(sp, m, contextLength, path);
        }
        catch (Exception e) when (e is not VitSharpException and (ArgumentException or InvalidOperationException or FormatException or IOException or NotSupportedException or IndexOutOfRangeException))
        {
            throw new VitSharpException($"{path}: not a SentencePiece model Microsoft.ML.Tokenizers reads ({ErrorText.OneLine(e.Message)})", e);
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

    [GeneratedRegex(@"(</s>|<unk>)")]
    private static partial Regex Specials();

    /// <summary>Python's str.lower as transformers' do_lower_case applies it: .NET's invariant lower case, but İ becomes
    /// "i̇" and a final Σ "ς", as in Python.</summary>
    public static string Lower(string text)
    {
        var sb = new StringBuilder(text.Length);
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (c == '\u0130') sb.Append("i\u0307");
            else if (c == '\u03A3')
            {
                bool before = i > 0 && char.IsLetter(text[i - 1]);
                bool after = i + 1 < text.Length && char.IsLetter(text[i + 1]);
                sb.Append(before && !after ? '\u03C2' : '\u03C3');
            }
            else sb.Append(char.ToLowerInvariant(c));
        }
        return sb.ToString();
    }

    /// <summary>big_vision's canonicalize_text after lower-casing: Python's string.punctuation removed, whitespace runs
    /// → one space, trimmed.</summary>
    public static string Canonicalize(string text)
    {
        var sb = new StringBuilder(text.Length);
        foreach (var ch in Lower(text))
        {
            bool punctuation = ch is > ' ' and < (char)127 && !char.IsAsciiLetterOrDigit(ch);
            if (!punctuation) sb.Append(ch);
        }
        return Whitespace().Replace(sb.ToString(), " ").Trim();
    }

    /// <summary>The SentencePiece ids of a text, without the final &lt;/s&gt; and untruncated: the text split on the
    /// special tokens; the first part "▁" + the text, each part canonicalised and encoded (transformers'
    /// SiglipTokenizer.tokenize and _tokenize).</summary>
    public IReadOnlyList<int> EncodeRaw(string text)
    {
        var ids = new List<int>();
        bool first = true;
        foreach (var part in Specials().Split(text))
        {
            if (_special.TryGetValue(part, out var id)) { ids.Add(id); first = false; continue; }
            var t = Canonicalize(first ? Underline + part.Replace(Underline, " ", StringComparison.Ordinal) : part);
            first = false;
            if (t.Length == 0) continue;
            if (t == Underline) { if (_spaceId >= 0) ids.Add(_spaceId); continue; }
            ids.AddRange(_sp.EncodeToIds(t, false, false));
        }
        // transformers: a lone "▁" before a special token is dropped.
        if (ids.Count > 1 && ids[0] == _spaceId && _special.ContainsValue(ids[1])) ids.RemoveAt(0);
        return ids;
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
