using System.Text;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace VitSharp.Text;

/// <summary>
/// SigLIP's SentencePiece tokenizer (spiece.model), as transformers' SiglipTokenizer computes it, on
/// Microsoft.ML.Tokenizers' SentencePiece: lower-cased (do_lower_case), ASCII punctuation removed, whitespace runs
/// made one space and the ends trimmed (big_vision's canonicalize_text), encoded with the model's own normalizer and
/// dummy prefix (special tokens in the text stay tokens), &lt;/s&gt; appended, truncated to <see cref="ContextLength"/> (the &lt;/s&gt; kept) and padded to
/// it with the pad id: SigLIP's text tower pools the last position, so every row has the full length.
/// </summary>
public sealed partial class SiglipTokenizer : ITextTokenizer
{
    private readonly SentencePieceTokenizer _sp;
    private readonly Dictionary<string, int> _special;
    private readonly int _unkId;
    private readonly bool _nmt;
    private readonly bool _canonical;

    private SiglipTokenizer(SentencePieceTokenizer sp, SentencePieceModelFile? file, int contextLength, string source, bool canonicalize)
    {
        _sp = sp;
        _canonical = canonicalize;
        VocabSize = sp.Vocabulary.Count;
        _nmt = file?.NormalizerName.StartsWith("nmt", StringComparison.Ordinal) ?? true;
        ContextLength = contextLength;
        var v = sp.Vocabulary;
        EosId = v.TryGetValue("</s>", out var eos) ? eos : file?.EosId ?? -1;
        if (EosId < 0) throw new VitSharpException($"{source}: the SentencePiece model has no </s>");
        PadId = EosId; // transformers' SiglipTokenizer pads with </s> (its pad_token)
        int unk = v.TryGetValue("<unk>", out var u) ? u : file?.UnkId ?? -1;
        // transformers splits the text on its special tokens before anything else: they stay tokens.
        _special = new Dictionary<string, int> { ["</s>"] = EosId };
        if (unk >= 0) _special["<unk>"] = unk;
        _unkId = unk;
    }

    /// <summary>sentencepiece's encode on Microsoft.ML.Tokenizers' SentencePiece: the NMT normalizers' control
    /// characters (U+0001–U+0008, U+000B, U+000E–U+001F, U+007F, U+008F, U+009F) removed first (the precompiled map
    /// deletes them; Microsoft.ML.Tokenizers 3.0 leaves them as unknown pieces), and a run of unknown pieces made one
    /// &lt;unk&gt;, as sentencepiece's unigram model emits it. Measured equal to sentencepiece 0.2.2 on the 300 test strings.</summary>
    public static List<int> EncodeSentencePiece(SentencePieceTokenizer sp, string text, int unkId, bool nmtNormalizer)
    {
        if (nmtNormalizer)
        {
            var sb = new StringBuilder(text.Length);
            foreach (var c in text)
                if (!(c is >= '\u0001' and <= '\u0008' or '\u000B' or >= '\u000E' and <= '\u001F' or '\u007F' or '\u008F' or '\u009F')) sb.Append(c);
            text = sb.ToString();
        }
        var ids = new List<int>();
        foreach (var id in sp.EncodeToIds(text, false, false))
            if (!(id == unkId && ids.Count > 0 && ids[^1] == unkId)) ids.Add(id);
        return ids;
    }

    public int ContextLength { get; }
    public int PadId { get; }
    public int EosId { get; }
    /// <summary>The model's pieces: the ids it makes are below this.</summary>
    public int VocabSize { get; }
    /// <summary>Whether texts are lower-cased and canonicalised first (SigLIP), or encoded as they are (LiT's
    /// tensorflow_text SentencePiece with add_eos, where special-token text is not split out either).</summary>
    public bool Canonicalizes => _canonical;

    /// <summary>A SentencePiece model file: read by <see cref="SentencePieceModelFile"/> and, for unigram models
    /// (SigLIP's), handed to Microsoft.ML.Tokenizers' unigram SentencePiece as its pieces, scores and normalizer
    /// settings (its dummy prefix: the "▁" before each text, as sentencepiece and transformers 5 put it); other model types load through
    /// Microsoft.ML.Tokenizers' own model reader. <paramref name="canonicalize"/> false: texts are encoded as they
    /// are (<see cref="Canonicalizes"/>).</summary>
    public static SiglipTokenizer FromModel(string path, int contextLength = 64, bool canonicalize = true)
    {
        if (!File.Exists(path)) throw new VitSharpException($"{path}: file not found");
        var m = SentencePieceModelFile.Read(path);
        try
        {
            SentencePieceTokenizer sp;
            if (m.ModelType == 1)
                sp = SentencePieceTokenizer.Create(m.Pieces.Select(p => (p.Piece, p.Score)), m.UnkId, false, false,
                    m.PrecompiledCharsMap.Length > 0 ? m.PrecompiledCharsMap : default, addDummyPrefix: m.AddDummyPrefix,
                    escapeWhiteSpaces: m.EscapeWhitespaces, treatWhitespaceAsSuffix: m.TreatWhitespaceAsSuffix, byteFallback: m.ByteFallback);
            else
            {
                using var s = File.OpenRead(path);
                sp = SentencePieceTokenizer.Create(s, false, false);
            }
            return new SiglipTokenizer(sp, m, contextLength, path, canonicalize);
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
    /// special tokens, each other part canonicalised and encoded with the model's dummy prefix (what transformers 5.17's
    /// SiglipTokenizer computes; tests/tools/make_zeroshot_refs.py).</summary>
    public IReadOnlyList<int> EncodeRaw(string text)
    {
        var ids = new List<int>();
        if (!_canonical)
        {
            if (text.Length > 0) ids.AddRange(EncodeSentencePiece(_sp, text, _unkId, _nmt));
            return ids;
        }
        foreach (var part in Specials().Split(text))
        {
            if (_special.TryGetValue(part, out var id)) { ids.Add(id); continue; }
            var t = Canonicalize(part);
            if (t.Length == 0) continue;
            ids.AddRange(EncodeSentencePiece(_sp, t, _unkId, _nmt));
        }
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
