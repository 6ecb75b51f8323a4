using System.IO.Compression;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace VitSharp.Text;

/// <summary>A text tokenizer of a two-tower model: text in, the token ids its text tower reads (special tokens
/// added, truncated, padded as the model's own tokenizer does).</summary>
public interface ITextTokenizer
{
    /// <summary>The most ids one text becomes (CLIP 77, SigLIP 64).</summary>
    int ContextLength { get; }
    /// <summary>The id shorter rows are padded with.</summary>
    int PadId { get; }
    int[] Encode(string text);
}

/// <summary>
/// CLIP's byte-level BPE, as transformers' CLIPTokenizerFast computes it, on Microsoft.ML.Tokenizers' BPE: text NFC
/// normalised, runs of whitespace made one space, lower-cased; split by CLIP's pattern (the two special tokens,
/// contractions, letter runs, single digits, other non-space runs); each piece's UTF-8 bytes mapped to GPT-2's
/// printable characters and merged with "&lt;/w&gt;" marking a word's end; &lt;|startoftext|&gt; … &lt;|endoftext|&gt;
/// around at most 75 ids. ftfy's repairs (which OpenAI's original tokenizer applies and transformers' fast one does
/// not) are not made.
/// </summary>
public sealed partial class ClipTokenizer : ITextTokenizer
{
    public const string StartOfText = "<|startoftext|>", EndOfText = "<|endoftext|>";
    private readonly BpeTokenizer _bpe;

    private ClipTokenizer(Dictionary<string, int> vocab, List<string> merges, string source, int contextLength)
    {
        if (!vocab.TryGetValue(StartOfText, out var bos) || !vocab.TryGetValue(EndOfText, out var eos))
            throw new VitSharpException($"{source}: the vocabulary lacks {StartOfText} or {EndOfText}");
        BosId = bos;
        EosId = eos;
        PadId = eos;
        ContextLength = contextLength;
        var special = new Dictionary<string, int> { [StartOfText] = bos, [EndOfText] = eos };
        try
        {
            _bpe = BpeTokenizer.Create(new BpeOptions(vocab)
            {
                Merges = merges,
                PreTokenizer = new RegexPreTokenizer(Pattern(), special),
                ByteLevel = true,
                EndOfWordSuffix = "</w>",
                UnknownToken = EndOfText,
                SpecialTokens = special,
            });
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException)
        {
            throw new VitSharpException($"{source}: not a CLIP BPE vocabulary: {e.Message}", e);
        }
    }

    public int BosId { get; }
    public int EosId { get; }
    public int PadId { get; }
    public int ContextLength { get; }
    public int VocabSize => _bpe.Vocabulary.Values.Max() + 1;

    [GeneratedRegex(@"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+", RegexOptions.IgnoreCase)]
    private static partial Regex Pattern();

    [GeneratedRegex(@"\s+")]
    private static partial Regex Whitespace();

    /// <summary>GPT-2's byte → printable character table, in its order (the printable bytes first): the first 256
    /// entries of CLIP's vocabulary.</summary>
    internal static string[] ByteChars()
    {
        var bs = new List<int>();
        for (int i = '!'; i <= '~'; i++) bs.Add(i);
        for (int i = 0xA1; i <= 0xAC; i++) bs.Add(i);
        for (int i = 0xAE; i <= 0xFF; i++) bs.Add(i);
        var cs = new List<int>(bs);
        int n = 0;
        for (int b = 0; b < 256; b++)
            if (!bs.Contains(b)) { bs.Add(b); cs.Add(256 + n++); }
        return cs.Select(c => ((char)c).ToString()).ToArray();
    }

    /// <summary>OpenAI's original vocabulary file (bpe_simple_vocab_16e6.txt.gz): the vocabulary built from it as
    /// OpenAI and transformers do: 256 byte tokens, the same with "&lt;/w&gt;", one token per merge (lines 1 to
    /// <paramref name="merges"/>, 48894 by default: a 49408-token vocabulary), then the two special tokens.</summary>
    public static ClipTokenizer FromBpeGz(string path, int merges = 49152 - 256 - 2, int contextLength = 77)
    {
        if (!File.Exists(path)) throw new VitSharpException($"{path}: file not found");
        var lines = new List<string>();
        try
        {
            using var gz = new GZipStream(File.OpenRead(path), CompressionMode.Decompress);
            using var r = new StreamReader(gz, new UTF8Encoding(false, true));
            r.ReadLine(); // the version line
            for (string? l; lines.Count < merges && (l = r.ReadLine()) is not null;) lines.Add(l);
        }
        catch (Exception e) when (e is InvalidDataException or DecoderFallbackException or IOException)
        {
            throw new VitSharpException($"{path}: not a gzip-compressed UTF-8 BPE merges file ({e.Message})", e);
        }
        if (lines.Count < merges) throw new VitSharpException($"{path}: {lines.Count} merges, fewer than the {merges} asked for");
        var bytes = ByteChars();
        var vocab = new Dictionary<string, int>();
        foreach (var t in bytes.Concat(bytes.Select(b => b + "</w>"))) vocab[t] = vocab.Count;
        // As OpenAI's dict(zip(vocab, range(len(vocab)))): ids are positions in the list, a repeated token keeps its last.
        int next = vocab.Count;
        for (int i = 0; i < lines.Count; i++)
        {
            var parts = lines[i].Split(' ');
            if (parts.Length != 2) throw new VitSharpException($"{path}: line {i + 2} is not a merge of two tokens: '{lines[i]}'");
            vocab[parts[0] + parts[1]] = next++;
        }
        vocab[StartOfText] = next++;
        vocab[EndOfText] = next;
        return new ClipTokenizer(vocab, lines, path, contextLength);
    }

    /// <summary>A Hugging Face folder's vocab.json and merges.txt (and tokenizer_config.json's model_max_length).</summary>
    public static ClipTokenizer FromFolder(string dir)
    {
        string vocabPath = Path.Combine(dir, "vocab.json"), mergesPath = Path.Combine(dir, "merges.txt");
        if (!File.Exists(vocabPath) || !File.Exists(mergesPath))
            throw new VitSharpException($"{dir}: no vocab.json and merges.txt (CLIP's tokenizer files); pass --clip-bpe bpe_simple_vocab_16e6.txt.gz");
        Dictionary<string, int> vocab;
        try
        {
            var node = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(vocabPath)) as System.Text.Json.Nodes.JsonObject
                ?? throw new VitSharpException($"{vocabPath}: not a JSON object of token → id");
            vocab = new Dictionary<string, int>(node.Count);
            foreach (var (k, v) in node)
                vocab[k] = v is System.Text.Json.Nodes.JsonValue jv && jv.TryGetValue<int>(out var id) && id >= 0 ? id
                    : throw new VitSharpException($"{vocabPath}: token '{k}' has no non-negative integer id");
        }
        catch (JsonException e) { throw new VitSharpException($"{vocabPath}: not a JSON object of token → id ({ErrorText.OneLine(e.Message)})", e); }
        var merges = new List<string>();
        int lineNo = 0;
        foreach (var line in File.ReadLines(mergesPath))
        {
            lineNo++;
            if (line.StartsWith("#version", StringComparison.Ordinal) || line.Length == 0) continue;
            if (line.Split(' ').Length != 2) throw new VitSharpException($"{mergesPath}: line {lineNo} is not a merge of two tokens: '{line}'");
            merges.Add(line);
        }
        int context = 77;
        var cfgPath = Path.Combine(dir, "tokenizer_config.json");
        if (File.Exists(cfgPath) && ZeroShotJson.Int(cfgPath, "model_max_length") is int m && m > 0 && m < 100_000) context = m;
        return new ClipTokenizer(vocab, merges, vocabPath, context);
    }

    /// <summary>CLIPTokenizerFast's normalizer: NFC, whitespace runs → one space, lower case.</summary>
    /// <remarks>Lower case as the tokenizers library's (Rust's char::to_lowercase, per character): .NET's invariant mapping but
    /// for U+0130, whose lower case is two characters there.</remarks>
    public static string Normalize(string text) =>
        Whitespace().Replace(Nfc.Normalize(text), " ").Replace("\u0130", "i\u0307", StringComparison.Ordinal).ToLowerInvariant();

    /// <summary>The BPE ids of a text without the special tokens around it and untruncated.</summary>
    public IReadOnlyList<int> EncodeRaw(string text) => _bpe.EncodeToIds(Normalize(text), considerPreTokenization: true, considerNormalization: false);

    /// <summary>&lt;|startoftext|&gt;, at most <see cref="ContextLength"/> − 2 ids, &lt;|endoftext|&gt;.</summary>
    public int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = EncodeRaw(text);
        int keep = Math.Min(ids.Count, ContextLength - 2);
        var o = new int[keep + 2];
        o[0] = BosId;
        for (int i = 0; i < keep; i++) o[i + 1] = ids[i];
        o[^1] = EosId;
        return o;
    }
}
