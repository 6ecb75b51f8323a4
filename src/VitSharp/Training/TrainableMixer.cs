using VitSharp.Models;
using VitSharp.Tensors;

namespace VitSharp.Training;

/// <summary>
/// MLP-Mixer training forward and backward, mirroring <see cref="MlpMixer.Forward"/>. Token mixing runs on the transposed
/// sequence (B, D, N), so its backward transposes the gradient the other way round.
/// </summary>
public sealed class TrainableMixer : TrainableModel
{
    private sealed class BlockActs
    {
        public required Tensor Ln1, Mean1, Rstd1, Tr, THPre, THAct, TOut, Mixed, XMid, Ln2, Mean2, Rstd2, CHPre, CHAct, COut, XOut;
        public Tensor? TokMask, ChMask, THMask, CHMask;
    }

    private readonly MixerConfig _c;
    private Tensor _images = null!, _x0 = null!, _tokens = null!, _nMean = null!, _nRstd = null!, _pool = null!, _logits = null!;
    private BlockActs[] _acts = [];
    private Tensor _dResid = null!, _dTmp = null!, _dLn = null!, _dTr = null!, _dTrIn = null!, _dTH = null!, _dCH = null!, _dPool = null!;

    public TrainableMixer(MlpMixer model) : base(model)
    {
        _c = model.Config;
        if (_c.NumClasses <= 0) throw new VitSharpException("training needs a model with a classification head (num_classes > 0)");
    }

    private void Allocate(int b)
    {
        if (!EnsureActivations(b)) return;
        int n = _c.NumPatches, d = _c.EmbedDim, mt = _c.TokenMlpDim, mc = _c.ChannelMlpDim;
        _x0 = Get(b, n, d);
        _acts = Enumerable.Range(0, _c.Depth).Select(_ => new BlockActs
        {
            Ln1 = Get(b, n, d), Mean1 = Get(b * n), Rstd1 = Get(b * n), Tr = Get(b, d, n), THPre = Get(b, d, mt), THAct = Get(b, d, mt),
            TOut = Get(b, d, n), Mixed = Get(b, n, d), XMid = Get(b, n, d), Ln2 = Get(b, n, d), Mean2 = Get(b * n), Rstd2 = Get(b * n),
            CHPre = Get(b, n, mc), CHAct = Get(b, n, mc), COut = Get(b, n, d), XOut = Get(b, n, d),
        }).ToArray();
        _tokens = Get(b, n, d); _nMean = Get(b * n); _nRstd = Get(b * n); _pool = Get(b, d); _logits = Get(b, _c.NumClasses);
        _dResid = Get(b, n, d); _dTmp = Get(b, n, d); _dLn = Get(b, n, d); _dTr = Get(b, d, n); _dTrIn = Get(b, d, n);
        _dTH = Get(b, d, mt); _dCH = Get(b, n, mc); _dPool = Get(b, d);
    }

    public override Tensor Forward(Tensor images, Random? rng)
    {
        Model.CheckInput(images.Shape);
        int b = images.Dim(0), n = _c.NumPatches, d = _c.EmbedDim;
        Allocate(b);
        var be = Be;
        var reg = Regularization;
        _images = images;
        var stem = Lin("stem.proj");
        be.PatchEmbed(images, stem.W, stem.B!, _x0, _c.PatchSize);
        var x = _x0;
        for (int l = 0; l < _c.Depth; l++)
        {
            var a = _acts[l];
            string p = $"blocks.{l}";
            float dp = reg.DropPathAt(l, _c.Depth);
            var n1 = Norm(p + ".norm1");
            be.LayerNormTrain(x, n1.G, n1.B, _c.LayerNormEps, a.Ln1, a.Mean1, a.Rstd1);
            be.Transpose12(a.Ln1, a.Tr);
            a.THMask = MlpForward(p + ".mlp_tokens", _c.Gelu, a.Tr, a.THPre, a.THAct, a.TOut, p + ".tok.hidden", rng, reg.DropRate);
            be.Transpose12(a.TOut, a.Mixed);
            a.TokMask = Mask(p + ".tok", rng, [b, n, d], reg.DropRate, dp);
            if (a.TokMask is not null) ApplyMask(a.Mixed, a.TokMask, a.Mixed);
            be.Add(x, a.Mixed, a.XMid);

            var n2 = Norm(p + ".norm2");
            be.LayerNormTrain(a.XMid, n2.G, n2.B, _c.LayerNormEps, a.Ln2, a.Mean2, a.Rstd2);
            a.CHMask = MlpForward(p + ".mlp_channels", _c.Gelu, a.Ln2, a.CHPre, a.CHAct, a.COut, p + ".ch.hidden", rng, reg.DropRate);
            a.ChMask = Mask(p + ".ch", rng, [b, n, d], reg.DropRate, dp);
            if (a.ChMask is not null) ApplyMask(a.COut, a.ChMask, a.COut);
            be.Add(a.XMid, a.COut, a.XOut);
            x = a.XOut;
        }
        var nf = Norm("norm");
        be.LayerNormTrain(x, nf.G, nf.B, _c.LayerNormEps, _tokens, _nMean, _nRstd);
        be.MeanTokens(_tokens, 0, _pool);
        var head = Lin("head");
        be.Linear(_pool, head.W, head.B, _logits);
        return _logits;
    }

    public override void Backward(Tensor dlogits)
    {
        var be = Be;
        var head = Lin("head");
        be.LinearBackward(dlogits, _pool, head.W, _dPool, head.DW, head.DB);
        be.MeanTokensBackward(_dPool, 0, _dTmp);
        var nf = Norm("norm");
        be.LayerNormBackward(_dTmp, _acts.Length > 0 ? _acts[^1].XOut : _x0, nf.G, _nMean, _nRstd, _dResid, nf.DG, nf.DB);

        for (int l = _c.Depth - 1; l >= 0; l--)
        {
            var a = _acts[l];
            string p = $"blocks.{l}";
            var xIn = l == 0 ? _x0 : _acts[l - 1].XOut;
            // Channel mixing.
            var dC = Masked(_dResid, a.ChMask, _dTmp);
            MlpBackward(p + ".mlp_channels", _c.Gelu, dC, a.CHAct, a.CHMask, a.CHPre, a.Ln2, _dCH, _dLn);
            var n2 = Norm(p + ".norm2");
            be.LayerNormBackward(_dLn, a.XMid, n2.G, a.Mean2, a.Rstd2, _dResid, n2.DG, n2.DB, accumulateDx: true);

            // Token mixing: (B, N, D) gradient → (B, D, N), through the token MLP, and back.
            var dMixed = Masked(_dResid, a.TokMask, _dTmp);
            be.Transpose12(dMixed, _dTr);
            MlpBackward(p + ".mlp_tokens", _c.Gelu, _dTr, a.THAct, a.THMask, a.THPre, a.Tr, _dTH, _dTrIn);
            be.Transpose12(_dTrIn, _dLn);
            var n1 = Norm(p + ".norm1");
            be.LayerNormBackward(_dLn, xIn, n1.G, a.Mean1, a.Rstd1, _dResid, n1.DG, n1.DB, accumulateDx: true);
        }
        var stem = Lin("stem.proj");
        be.PatchEmbedBackward(_dResid, _images, stem.DW, stem.DB!, _c.PatchSize);
    }
}
