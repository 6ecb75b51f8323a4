using VitSharp.Tensors;

namespace VitSharp.Backends;

/// <summary>Pointwise function applied after a matrix product or on its own.</summary>
/// <summary>Pointwise function applied after a matrix product or on its own. QuickGelu is OpenAI CLIP's x·σ(1.702·x);
/// Silu is x·σ(x). The numeric values are shared with the CUDA kernels (common.cu, training.cu).</summary>
public enum Activation { None, Gelu, GeluTanh, Tanh, QuickGelu, Relu, Silu }

/// <summary>
/// The coarse operations a ViT or Mixer needs, one implementation per device. Model and layer code call only this,
/// so the CPU and CUDA paths share every model file. Operations are asynchronous on devices that queue work:
/// nothing here waits for the device except <see cref="CopyToHost"/> and <see cref="Synchronize"/>.
/// Shapes use row-major (…, features) layout; "rows" means the product of all leading dimensions.
/// </summary>
public interface IBackend : IDisposable
{
    Device Device { get; }

    /// <summary>The dtype activations are computed in on this backend (F32 on the CPU; BF16 or F32 on CUDA).</summary>
    DType ComputeType { get; }

    Tensor Allocate(int[] shape, DType dtype);

    /// <summary>Copies host floats into <paramref name="dst"/>, converting to its dtype.</summary>
    void CopyFromHost(ReadOnlySpan<float> src, Tensor dst);

    /// <summary>Copies <paramref name="src"/> to host floats, converting from its dtype; waits for queued work.</summary>
    void CopyToHost(Tensor src, Span<float> dst);

    void Synchronize();

    /// <summary>Sets every element of <paramref name="x"/> to zero (parameter sets start zeroed: gradients, optimizer
    /// state and alignment gaps; device allocators may hand out reused memory).</summary>
    void Zero(Tensor x);

    /// <summary>y[rows, N] = act(x[rows, K] · w[N, K]ᵀ + bias) (+ y when <paramref name="accumulate"/>, before act = None only).
    /// Weights are stored (out, in) as in PyTorch.</summary>
    void Linear(Tensor x, Tensor w, Tensor? bias, Tensor y, Activation act = Activation.None, bool accumulate = false);

    /// <summary>Layer normalisation over the last dimension.</summary>
    void LayerNorm(Tensor x, Tensor gamma, Tensor beta, float eps, Tensor y);

    /// <summary>y = a + b elementwise (y may be a or b: the residual stream is updated in place).</summary>
    void Add(Tensor a, Tensor b, Tensor y);

    void Apply(Activation act, Tensor x, Tensor y);

    /// <summary>
    /// Multi-head self-attention on fused projections. qkv: (B, N, 3·H·d) laid out as (B, N, 3, H, d) like timm's qkv
    /// Linear; y: (B, N, H·d). softmax(q·kᵀ·scale)·v per head. When <paramref name="probs"/> is given (B, H, N, N),
    /// the attention weights are written there too (for attention maps).
    /// </summary>
    void Attention(Tensor qkv, Tensor y, int heads, float scale, Tensor? probs = null);

    /// <summary>Non-overlapping P×P patches of images (B, C, H, W) projected by w (D, C, P, P) + bias into y (B, Np, D),
    /// patches in row-major grid order.</summary>
    void PatchEmbed(Tensor images, Tensor w, Tensor bias, Tensor y, int patch);

    /// <summary>x (B, T, D) = [cls ; patches] + pos, where cls (1,1,D) is optional (T = Np or Np+1) and pos is (1, T, D).</summary>
    void Embed(Tensor patches, Tensor? cls, Tensor pos, Tensor x);

    /// <summary>y (B, D) = mean of x (B, T, D) over tokens [start, T).</summary>
    void MeanTokens(Tensor x, int start, Tensor y);

    /// <summary>y (B, D) = x[:, index, :].</summary>
    void SelectToken(Tensor x, int index, Tensor y);

    /// <summary>y (B, C, A) = x (B, A, C) with the last two axes swapped (Mixer token mixing).</summary>
    void Transpose12(Tensor x, Tensor y);

    // The ops of the ViT family options (registers, distillation token, layer scale, qk_norm, max and attention-pool
    // heads, pixel-normalised patches). Their default bodies run on the host through CopyToHost/CopyFromHost: correct on
    // every device and in every compute type, not fast; the CPU backend runs the per-block ones (layer scale, prefix
    // tokens, scaling) in place (Cpu/CpuBackend.Family.cs).

    /// <summary>x (B, T, D) = [prefix₀ ; prefix₁ ; … ; patches] + pos: each prefix (1, kᵢ, D), pos (1, T, D).</summary>
    void EmbedTokens(Tensor patches, IReadOnlyList<Tensor> prefix, Tensor pos, Tensor x) => HostOps.EmbedTokens(this, patches, prefix, pos, x);

    /// <summary>y = x ⊙ γ with γ (D) broadcast over the rows (layer scale); y may be x.</summary>
    void MulChannels(Tensor x, Tensor gamma, Tensor y) => HostOps.MulChannels(this, x, gamma, y);

    /// <summary>y = s·x (y may be x).</summary>
    void ScaleInto(Tensor x, float s, Tensor y) => HostOps.ScaleInto(this, x, s, y);

    /// <summary>y (B, D) = max of x (B, T, D) over tokens [start, T).</summary>
    void MaxTokens(Tensor x, int start, Tensor y) => HostOps.MaxTokens(this, x, start, y);

    /// <summary>timm's qk_norm, in place on qkv (B, N, 3·H·d): LayerNorm over each head's d features of q (γq, βq) and of k (γk, βk).</summary>
    void QkNorm(Tensor qkv, int heads, Tensor qGamma, Tensor qBeta, Tensor kGamma, Tensor kBeta, float eps) =>
        HostOps.QkNorm(this, qkv, heads, qGamma, qBeta, kGamma, kBeta, eps);

    /// <summary>y (B, Np, C·P·P) = the P×P patches of images (B, C, H, W), each flattened in (c, p1, p2) order (the
    /// order of a patch convolution's weight), patches in row-major grid order.</summary>
    void UnfoldPatches(Tensor images, Tensor y, int patch) => HostOps.UnfoldPatches(this, images, y, patch);

    /// <summary>Multi-head attention of queries q (1 or B, L, H·d) over kv (B, N, 2·H·d) laid out (B, N, 2, H, d): y (B, L, H·d).</summary>
    void CrossAttention(Tensor q, Tensor kv, Tensor y, int heads, float scale) => HostOps.CrossAttention(this, q, kv, y, heads, scale);

    /// <summary>Causal multi-head self-attention (a text tower's, CLIP's): as <see cref="Attention"/>, but token i attends
    /// only to tokens 0…i. qkv (B, N, 3·H·d) laid out (B, N, 3, H, d); y (B, N, H·d).</summary>
    void CausalAttention(Tensor qkv, Tensor y, int heads, float scale) => HostOps.CausalAttention(this, qkv, y, heads, scale);

    // CCT's convolutional tokenizer (Nn.ConvTokenizer): 3×3 convolutions (stride 1, zero padding 1, no bias) as an unfold
    // plus the Linear product, and 3×3 max pooling (stride 2, padding 1). Feature maps after the first layer are
    // channels-last, (B, H·W, C): the token layout, which the product writes directly. Host defaults (HostOps); the CPU
    // (Cpu/CpuBackend.Conv.cs) and CUDA (Kernels/conv.cu) run their own kernels.

    /// <summary>cols (B, H·W, C·9) = each pixel's 3×3 neighbourhood (zero outside the image) in (c, kh, kw) order, the order
    /// of a (Cout, C, 3, 3) convolution weight read as (Cout, C·9). x is (B, C, H, W) when <paramref name="channelsFirst"/>
    /// (an image), else channels-last (B, H·W, C).</summary>
    void Im2Col3x3(Tensor x, Tensor cols, int height, int width, bool channelsFirst) =>
        HostOps.Im2Col3x3(this, x, cols, height, width, channelsFirst);

    /// <summary>y (B, H·W, Cout) = act(conv3x3(x, w)) with w (Cout, Cin, 3, 3), stride 1, zero padding 1, no bias: the unfold
    /// into <paramref name="cols"/> (B, H·W, Cin·9, scratch) then one product. x as <see cref="Im2Col3x3"/> reads it.</summary>
    void Conv3x3(Tensor x, Tensor w, Tensor cols, Tensor y, int height, int width, bool channelsFirst, Activation act)
    {
        Im2Col3x3(x, cols, height, width, channelsFirst);
        Linear(cols, w.View(w.Dim(0), cols.Dim(-1)), null, y, act);
    }

    /// <summary>y (B, Ho·Wo, C) = max over 3×3 windows at stride 2 with padding 1 (never picked) of x (B, H·W, C),
    /// channels-last; Ho = (H − 1)/2 + 1 (PyTorch's MaxPool2d(3, 2, 1)).</summary>
    void MaxPool3x3s2(Tensor x, Tensor y, int height, int width) => HostOps.MaxPool3x3s2(this, x, y, height, width);

    /// <summary>CCT's sequence pooling (Nn.SeqPool): weights (B, N) F32 = softmax over the N tokens of scores (B, N) (the
    /// score Linear's output, any shape of B·N elements); y (B, D) = Σₙ weightsₙ · x (B, N, D)ₙ. Host default (HostOps);
    /// the CPU and CUDA (Kernels/seqpool.cu) run their own.</summary>
    void SeqPool(Tensor x, Tensor scores, Tensor weights, Tensor y) => HostOps.SeqPool(this, x, scores, weights, y);
}
