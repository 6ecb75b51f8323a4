# References for the ViT with CCT's convolutional tokenizer (Hassani et al. 2021; SHI-Labs/Compact-Transformers'
# Tokenizer), made on the GPU machine's CPU in float32 with PyTorch and timm (run: OUT=dir python3 make_cct_refs.py).
# The model is timm's VisionTransformer with its patch_embed replaced by CCT's tokenizer: per layer Conv2d(3x3, s1, p1,
# no bias) -> ReLU -> MaxPool2d(3, 2, 1), the last layer embed_dim wide, flattened to (B, N, D) in (h, w) order.
# Written: model.safetensors (VitSharp's names: tokenizer.conv_layers.{i}.0.weight + timm's), input.npy, labels.npy,
# logits.npy, features.npy (tokens after the final norm or before fc_norm), loss.npy (cross-entropy, label smoothing 0.1),
# grads.safetensors (every parameter's gradient of that loss), meta.json.
import json, os
import numpy as np
import torch
import torch.nn as nn
import timm
from timm.models.vision_transformer import VisionTransformer
from safetensors.torch import save_file


class Tokenizer(nn.Module):
    """CCT's Tokenizer with kernel 3, stride 1, padding 1, max-pool 3/2/1, ReLU, no conv bias."""

    def __init__(self, layers, channels, in_chans, embed_dim):
        super().__init__()
        widths = [in_chans] + [channels] * (layers - 1) + [embed_dim]
        self.conv_layers = nn.Sequential(*[
            nn.Sequential(nn.Conv2d(widths[i], widths[i + 1], 3, 1, 1, bias=False), nn.ReLU(),
                          nn.MaxPool2d(3, 2, 1))
            for i in range(layers)])
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x):
        return self.conv_layers(x).flatten(2).transpose(1, 2)


def make(name, layers, channels, img, embed, depth, heads, classes, pool, batch, seed):
    torch.manual_seed(seed)
    m = VisionTransformer(img_size=img, patch_size=2 ** layers, in_chans=3, embed_dim=embed, depth=depth,
                          num_heads=heads, mlp_ratio=2.0, num_classes=classes, global_pool=pool)
    m.patch_embed = Tokenizer(layers, channels, 3, embed)
    with torch.no_grad():
        for k, p in m.named_parameters():
            if "conv_layers" not in k:
                p.add_(0.02 * torch.randn_like(p))  # non-trivial biases and norms
    m.eval()  # no dropout / drop path in the reference
    x = torch.randn(batch, 3, img, img)
    y = torch.randint(0, classes, (batch,))
    feats = m.forward_features(x)
    logits = m.forward_head(feats)
    loss = nn.functional.cross_entropy(logits, y, label_smoothing=0.1)
    loss.backward()
    rename = lambda k: k.replace("patch_embed.conv_layers", "tokenizer.conv_layers")
    d = os.path.join(os.environ.get("OUT", "."), name)
    os.makedirs(d, exist_ok=True)
    save_file({rename(k): v.detach().contiguous() for k, v in m.state_dict().items()}, f"{d}/model.safetensors")
    save_file({rename(k): p.grad.detach().contiguous() for k, p in m.named_parameters()}, f"{d}/grads.safetensors")
    np.save(f"{d}/input.npy", x.numpy())
    np.save(f"{d}/labels.npy", y.numpy())
    np.save(f"{d}/logits.npy", logits.detach().numpy())
    np.save(f"{d}/features.npy", feats.detach().numpy())
    np.save(f"{d}/loss.npy", np.array(loss.item(), dtype=np.float32))
    meta = dict(model="timm VisionTransformer + CCT Tokenizer", conv_tokenizer=dict(layers=layers, channels=channels),
                img_size=img, patch_size=2 ** layers, embed_dim=embed, depth=depth, num_heads=heads, mlp_dim=2 * embed,
                num_classes=classes, global_pool=pool, batch=batch, seed=seed, label_smoothing=0.1,
                torch=torch.__version__, timm=timm.__version__)
    with open(f"{d}/meta.json", "w") as f:
        json.dump(meta, f, indent=1)
    print(name, "loss", loss.item(), "logits", tuple(logits.shape))


torch.set_grad_enabled(True)
make("cct_tiny16", layers=2, channels=8, img=16, embed=32, depth=2, heads=2, classes=5, pool="token", batch=3, seed=0)
make("cct_tiny16_avg", layers=1, channels=8, img=16, embed=32, depth=2, heads=2, classes=5, pool="avg", batch=3, seed=1)
