using VitSharp.Backends;
using VitSharp.Models;
using VitSharp.Tensors;

namespace VitSharp.Training;

/// <summary>
/// ViT training forward and backward. The forward mirrors <see cref="VisionTransformer.Forward"/> (same kernels) but keeps
/// every tensor the backward reads: LayerNorm inputs and statistics, qkv and attention probabilities, MLP pre-activations.
/// Branch outputs are kept apart from the residual stream so dropout and drop path can scale them.
/// </summary>
public sealed class TrainableVit : TrainableModel
{
    private sealed class BlockActs
    {
        public required Tensor Ln1, Mean1, Rstd1, Qkv, Probs, Ctx, AttnOut, XMid, Ln2, Mean2, Rstd2, HPre, HAct, MlpOut, XOut;
        public Tensor? AttnMask, HMask, MlpMask;
    }

    private readonly VitConfig _c;
    private Tensor _images = null!, _patches = null!, _x0 = null!, _tokens = null!, _nMean = null!, _nRstd = null!;
    private Tensor _pool = null!, _fcOut = null!, _fcMean = null!, _fcRstd = null!, _prePre = null!, _preAct = null!, _logits = null!;
    private Tensor? _embedMask;
    private BlockActs[] _acts = [];
    // Gradient scratch, reused by every block.
    private Tensor _dResid = null!, _dTmp = null!, _dLn = null!, _dCtx = null!, _dQkv = null!, _dH = null!, _dPatches = null!;
    private Tensor _dFeat = null!, _dPoolA = null!, _dPoolB = null!;

    public TrainableVit(VisionTransformer model) : base(model)
    {
        _c = model.Config;
        if (_c.NumClasses <= 0) throw new VitSharpException("training needs a model with a classification head (num_classes > 0)");
    }

    private void Allocate(int b)
    {
        if (!EnsureActivations(b)) return;
        int t = _c.NumTokens, d = _c.EmbedDim, m = _c.MlpDim, h = _c.NumHeads;
        _patches = Get(b, _c.NumPatches, d);
        _x0 = Get(b, t, d);
        _acts = Enumerable.Range(0, _c.Depth).Select(_ => new BlockActs
        {
            Ln1 = Get(b, t, d), Mean1 = Get(b * t), Rstd1 = Get(b * t), Qkv = Get(b, t, 3 * d), Probs = Get(b, h, t, t),
            Ctx = Get(b, t, d), AttnOut = Get(b, t, d), XMid = Get(b, t, d), Ln2 = Get(b, t, d), Mean2 = Get(b * t),
            Rstd2 = Get(b * t), HPre = Get(b, t, m), HAct = Get(b, t, m), MlpOut = Get(b, t, d), XOut = Get(b, t, d),
        }).ToArray();
        _tokens = Get(b, t, d); _nMean = Get(b * t); _nRstd = Get(b * t);
        _pool = Get(b, d); _fcOut = Get(b, d); _fcMean = Get(b); _fcRstd = Get(b);
        _prePre = Get(b, _c.FeatureDim); _preAct = Get(b, _c.FeatureDim);
        _logits = Get(b, _c.NumClasses);
        _dResid = Get(b, t, d); _dTmp = Get(b, t, d); _dLn = Get(b, t, d); _dCtx = Get(b, t, d);
        _dQkv = Get(b, t, 3 * d); _dH = Get(b, t, m); _dPatches = Get(b, _c.NumPatches, d);
        _dFeat = Get(b, _c.FeatureDim); _dPoolA = Get(b, d); _dPoolB = Get(b, d);
    }

    public override Tensor Forward(Tensor images, Random? rng)
    {
        Model.CheckInput(images.Shape);
        int b = images.Dim(0), t = _c.NumTokens, d = _c.EmbedDim;
        Allocate(b);
        var be = Be;
        var reg = Regularization;
        _images = images;
        var (pw, pb, _, _) = Lin("patch_embed.proj");
        be.PatchEmbed(images, pw, pb!, _patches, _c.PatchSize);
        be.Embed(_patches, _c.ClassToken ? Parameters["cls_token"] : null, Parameters["pos_embed"], _x0);
        _embedMask = Mask("embed", rng, [b, t, d], reg.DropRate, 0);
        if (_embedMask is not null) ApplyMask(_x0, _embedMask, _x0);

        var x = _x0;
        for (int l = 0; l < _c.Depth; l++)
        {
            var a = _acts[l];
            string p = $"blocks.{l}";
            float dp = reg.DropPathAt(l, _c.Depth);
            var n1 = Norm(p + ".norm1");
            be.LayerNormTrain(x, n1.G, n1.B, _c.LayerNormEps, a.Ln1, a.Mean1, a.Rstd1);
            var qkv = Lin(p + ".attn.qkv", _c.QkvBias);
            be.Linear(a.Ln1, qkv.W, qkv.B, a.Qkv);
            be.Attention(a.Qkv, a.Ctx, _c.NumHeads, Scale, a.Probs);
            var proj = Lin(p + ".attn.proj");
            be.Linear(a.Ctx, proj.W, proj.B, a.AttnOut);
            a.AttnMask = Mask(p + ".attn", rng, [b, t, d], reg.DropRate, dp);
            if (a.AttnMask is not null) ApplyMask(a.AttnOut, a.AttnMask, a.AttnOut);
            be.Add(x, a.AttnOut, a.XMid);

            var n2 = Norm(p + ".norm2");
            be.LayerNormTrain(a.XMid, n2.G, n2.B, _c.LayerNormEps, a.Ln2, a.Mean2, a.Rstd2);
            a.HMask = MlpForward(p + ".mlp", _c.Gelu, a.Ln2, a.HPre, a.HAct, a.MlpOut, p + ".mlp.hidden", rng, reg.DropRate);
            a.MlpMask = Mask(p + ".mlp", rng, [b, t, d], reg.DropRate, dp);
            if (a.MlpMask is not null) ApplyMask(a.MlpOut, a.MlpMask, a.MlpOut);
            be.Add(a.XMid, a.MlpOut, a.XOut);
            x = a.XOut;
        }

        var tokens = x; // timm: no final norm when fc_norm is used
        if (!_c.FcNorm)
        {
            var nf = Norm("norm");
            be.LayerNormTrain(x, nf.G, nf.B, _c.LayerNormEps, _tokens, _nMean, _nRstd);
            tokens = _tokens;
        }
        if (_c.Pool == Pooling.Token) be.SelectToken(tokens, 0, _pool);
        else be.MeanTokens(tokens, _c.PrefixTokens, _pool);
        var feat = _pool;
        if (_c.FcNorm)
        {
            var fn = Norm("fc_norm");
            be.LayerNormTrain(_pool, fn.G, fn.B, _c.LayerNormEps, _fcOut, _fcMean, _fcRstd);
            feat = _fcOut;
        }
        if (_c.RepresentationSize > 0)
        {
            var pl = Lin("pre_logits.fc");
            be.Linear(feat, pl.W, pl.B, _prePre);
            be.Apply(Activation.Tanh, _prePre, _preAct);
            feat = _preAct;
        }
        var head = Lin("head");
        be.Linear(feat, head.W, head.B, _logits);
        return _logits;
    }

    private float Scale => 1f / MathF.Sqrt(_c.HeadDim);

    public override void Backward(Tensor dlogits)
    {
        var be = Be;
        // Head, pre-logits, fc_norm: back to the pooled features.
        var featIn = _c.RepresentationSize > 0 ? _preAct : _c.FcNorm ? _fcOut : _pool;
        var head = Lin("head");
        var dFeat = _c.RepresentationSize > 0 ? _dFeat : _dPoolA;
        be.LinearBackward(dlogits, featIn, head.W, dFeat, head.DW, head.DB);
        var dPool = _dPoolA;
        if (_c.RepresentationSize > 0)
        {
            be.ActivationBackward(Activation.Tanh, _dFeat, _prePre, _dFeat);
            var pl = Lin("pre_logits.fc");
            be.LinearBackward(_dFeat, _c.FcNorm ? _fcOut : _pool, pl.W, _dPoolA, pl.DW, pl.DB);
        }
        if (_c.FcNorm)
        {
            var fn = Norm("fc_norm");
            be.LayerNormBackward(_dPoolA, _pool, fn.G, _fcMean, _fcRstd, _dPoolB, fn.DG, fn.DB);
            dPool = _dPoolB;
        }
        // Pooling, final norm: into the residual stream's gradient.
        var dTokens = _c.FcNorm ? _dResid : _dTmp;
        if (_c.Pool == Pooling.Token) be.SelectTokenBackward(dPool, 0, dTokens);
        else be.MeanTokensBackward(dPool, _c.PrefixTokens, dTokens);
        if (!_c.FcNorm)
        {
            var nf = Norm("norm");
            be.LayerNormBackward(_dTmp, _acts.Length > 0 ? _acts[^1].XOut : _x0, nf.G, _nMean, _nRstd, _dResid, nf.DG, nf.DB);
        }

        for (int l = _c.Depth - 1; l >= 0; l--)
        {
            var a = _acts[l];
            string p = $"blocks.{l}";
            var xIn = l == 0 ? _x0 : _acts[l - 1].XOut;
            // MLP branch: the residual's gradient flows through unchanged and gains the branch's input gradient.
            var dMlp = Masked(_dResid, a.MlpMask, _dTmp);
            MlpBackward(p + ".mlp", _c.Gelu, dMlp, a.HAct, a.HMask, a.HPre, a.Ln2, _dH, _dLn);
            var n2 = Norm(p + ".norm2");
            be.LayerNormBackward(_dLn, a.XMid, n2.G, a.Mean2, a.Rstd2, _dResid, n2.DG, n2.DB, accumulateDx: true);

            // Attention branch.
            var dAttn = Masked(_dResid, a.AttnMask, _dTmp);
            var proj = Lin(p + ".attn.proj");
            be.LinearBackward(dAttn, a.Ctx, proj.W, _dCtx, proj.DW, proj.DB);
            be.AttentionBackward(_dCtx, a.Qkv, a.Probs, _dQkv, _c.NumHeads, Scale);
            var qkv = Lin(p + ".attn.qkv", _c.QkvBias);
            be.LinearBackward(_dQkv, a.Ln1, qkv.W, _dLn, qkv.DW, qkv.DB);
            var n1 = Norm(p + ".norm1");
            be.LayerNormBackward(_dLn, xIn, n1.G, a.Mean1, a.Rstd1, _dResid, n1.DG, n1.DB, accumulateDx: true);
        }

        if (_embedMask is not null) ApplyMask(_dResid, _embedMask, _dResid);
        be.EmbedBackward(_dResid, _dPatches, _c.ClassToken ? Grads["cls_token"] : null, Grads["pos_embed"]);
        var pe = Lin("patch_embed.proj");
        be.PatchEmbedBackward(_dPatches, _images, pe.DW, pe.DB!, _c.PatchSize);
    }
}
