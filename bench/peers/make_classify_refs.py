# End-to-end references for `vit classify`: image file -> peer preprocessing -> logits, with refs-small weights.
# Run on the GPU machine (timm, transformers, PIL there). Writes .npy files to $OUT.
import os
import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file
from timm.data import create_transform
from timm.models.vision_transformer import VisionTransformer
from transformers import ViTForImageClassification, ViTImageProcessor

out = os.environ.get("OUT", ".")
data = "tests/VitSharp.Tests/Data"
images = [f"{data}/images/chelsea_crop128x96.png", f"{data}/images/fuzz/progressive422.jpg"]
pil = [Image.open(p).convert("RGB") for p in images]

model = VisionTransformer(img_size=48, patch_size=16, embed_dim=64, depth=2, num_heads=2, num_classes=10).eval()
model.load_state_dict(load_file(f"{data}/refs-small/vit_tiny48/model.safetensors"))
timm_tf = create_transform(input_size=(3, 48, 48), interpolation="bicubic", crop_pct=0.875,
                           mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
x = torch.stack([timm_tf(im) for im in pil])
with torch.no_grad():
    np.save(f"{out}/timm_logits.npy", model(x).numpy().astype(np.float32))
np.save(f"{out}/timm_input.npy", x.numpy().astype(np.float32))

hf = ViTForImageClassification.from_pretrained(f"{data}/refs-small/vit_tiny48/hf").eval()
proc = ViTImageProcessor(size={"height": 48, "width": 48}, image_mean=[0.5] * 3, image_std=[0.5] * 3, resample=2)
px = proc(pil, return_tensors="pt")["pixel_values"]
with torch.no_grad():
    np.save(f"{out}/hf_logits.npy", hf(pixel_values=px).logits.numpy().astype(np.float32))
np.save(f"{out}/hf_input.npy", px.numpy().astype(np.float32))
print(x.shape, px.shape, "done")
