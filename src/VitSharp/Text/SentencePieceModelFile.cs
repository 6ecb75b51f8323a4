namespace VitSharp.Text;

/// <summary>
/// The parts of a SentencePiece model file (a serialized sentencepiece.ModelProto) that tokenizing needs: pieces with
/// scores and types, the model type, the special ids, and the normalizer's settings (precompiled character map,
/// dummy prefix, whitespace handling, byte fallback). A small reader of the protobuf wire format: unknown fields are
/// skipped, as protobuf does; a truncated or malformed file is an error naming it.
/// </summary>
public sealed class SentencePieceModelFile
{
    /// <summary>sentencepiece.ModelProto.SentencePiece.Type: what a piece is.</summary>
    public enum PieceType { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 }

    public List<(string Piece, float Score, PieceType Type)> Pieces { get; } = new();
    /// <summary>1 unigram, 2 BPE, 3 word, 4 char (trainer_spec.model_type).</summary>
    public int ModelType { get; private set; } = 1;
    public int UnkId { get; private set; }
    public int BosId { get; private set; } = 1;
    public int EosId { get; private set; } = 2;
    public int PadId { get; private set; } = -1;
    public bool ByteFallback { get; private set; }
    public bool TreatWhitespaceAsSuffix { get; private set; }
    public string NormalizerName { get; private set; } = "nmt_nfkc";
    public byte[] PrecompiledCharsMap { get; private set; } = [];
    public bool AddDummyPrefix { get; private set; } = true;
    public bool RemoveExtraWhitespaces { get; private set; } = true;
    public bool EscapeWhitespaces { get; private set; } = true;

    public static SentencePieceModelFile Read(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var m = new SentencePieceModelFile();
        try
        {
            var r = new Reader(bytes, 0, bytes.Length);
            while (r.More)
            {
                var (field, wire) = r.Tag();
                if (field == 1 && wire == 2) m.Pieces.Add(ReadPiece(r.Sub()));
                else if (field == 2 && wire == 2) m.ReadTrainer(r.Sub());
                else if (field == 3 && wire == 2) m.ReadNormalizer(r.Sub());
                else r.Skip(wire);
            }
        }
        catch (FormatException e) { throw new VitSharpException($"{path}: not a SentencePiece model ({e.Message})", e); }
        if (m.Pieces.Count == 0) throw new VitSharpException($"{path}: not a SentencePiece model (no pieces)");
        if (m.UnkId < 0 || m.UnkId >= m.Pieces.Count) throw new VitSharpException($"{path}: unk_id {m.UnkId} is not a piece");
        return m;
    }

    private static (string, float, PieceType) ReadPiece(Reader r)
    {
        string piece = "";
        float score = 0;
        var type = PieceType.Normal;
        while (r.More)
        {
            var (f, w) = r.Tag();
            if (f == 1 && w == 2) piece = r.String();
            else if (f == 2 && w == 5) score = r.Float();
            else if (f == 3 && w == 0) type = (PieceType)r.Varint();
            else r.Skip(w);
        }
        return (piece, score, type);
    }

    private void ReadTrainer(Reader r)
    {
        while (r.More)
        {
            var (f, w) = r.Tag();
            if (w != 0) { r.Skip(w); continue; }
            long v = r.Varint();
            switch (f)
            {
                case 3: ModelType = (int)v; break;
                case 24: TreatWhitespaceAsSuffix = v != 0; break;
                case 35: ByteFallback = v != 0; break;
                case 40: UnkId = (int)v; break;
                case 41: BosId = (int)v; break;
                case 42: EosId = (int)v; break;
                case 43: PadId = (int)v; break;
            }
        }
    }

    private void ReadNormalizer(Reader r)
    {
        while (r.More)
        {
            var (f, w) = r.Tag();
            if (f == 1 && w == 2) NormalizerName = r.String();
            else if (f == 2 && w == 2) PrecompiledCharsMap = r.Sub().Rest();
            else if (f is 3 or 4 or 5 && w == 0)
            {
                bool b = r.Varint() != 0;
                if (f == 3) AddDummyPrefix = b;
                else if (f == 4) RemoveExtraWhitespaces = b;
                else EscapeWhitespaces = b;
            }
            else r.Skip(w);
        }
    }

    private sealed class Reader(byte[] b, int pos, int end)
    {
        private int _pos = pos;
        public bool More => _pos < end;

        public long Varint()
        {
            long v = 0;
            for (int shift = 0; shift < 64; shift += 7)
            {
                if (_pos >= end) throw new FormatException("truncated varint");
                byte x = b[_pos++];
                v |= (long)(x & 0x7F) << shift;
                if (x < 0x80) return v;
            }
            throw new FormatException("varint longer than 10 bytes");
        }

        public (int Field, int Wire) Tag()
        {
            long t = Varint();
            return ((int)(t >> 3), (int)(t & 7));
        }

        private int Length()
        {
            long n = Varint();
            if (n < 0 || n > end - _pos) throw new FormatException($"a field of {n} bytes where {end - _pos} are left");
            return (int)n;
        }

        public Reader Sub()
        {
            int n = Length();
            var s = new Reader(b, _pos, _pos + n);
            _pos += n;
            return s;
        }

        public byte[] Rest() => b[_pos..end];

        public string String()
        {
            int n = Length();
            var s = System.Text.Encoding.UTF8.GetString(b, _pos, n);
            _pos += n;
            return s;
        }

        public float Float()
        {
            if (end - _pos < 4) throw new FormatException("truncated float");
            float f = BitConverter.ToSingle(b, _pos);
            _pos += 4;
            return f;
        }

        public void Skip(int wire)
        {
            switch (wire)
            {
                case 0: Varint(); break;
                case 1: Advance(8); break;
                case 2: Advance(Length()); break;
                case 5: Advance(4); break;
                default: throw new FormatException($"wire type {wire} at byte {_pos}");
            }
        }

        private void Advance(int n)
        {
            if (n > end - _pos) throw new FormatException("truncated field");
            _pos += n;
        }
    }
}
