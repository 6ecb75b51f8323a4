"""Reference outputs of PIL / torchvision / timm / transformers preprocessing, for VitSharp's transform tests.

Run on a machine with python3, pillow, torch, torchvision, timm and transformers:
    python3 make_resize_refs.py <input-dir> <out-dir>
Inputs: chelsea.png coffee.png camera.png rocket.ppm (rocket.jpg decoded by djpeg, so no JPEG decoder differences)
and small.png (a 128x96 crop of chelsea committed with the tests). Writes one .npz per input image.
"""
import json, sys, os
import numpy as np
import torch, torch.nn.functional as F
import PIL, timm, torchvision, transformers
from PIL import Image
from timm.data import create_transform
import torchvision.transforms as T

src, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
BIC, BIL = Image.Resampling.BICUBIC, Image.Resampling.BILINEAR
versions = dict(pillow=PIL.__version__, torch=torch.__version__, torchvision=torchvision.__version__,
                timm=timm.__version__, transformers=transformers.__version__)

def u8(im):
    return np.asarray(im, dtype=np.uint8).copy()

def no_aa_bilinear(im, h, w):
    # tf.image.resize(method='bilinear', antialias=False) == half-pixel-centre bilinear in float, as torch computes it
    x = torch.from_numpy(np.asarray(im, dtype=np.float32)).permute(2, 0, 1)[None]
    return F.interpolate(x, size=(h, w), mode='bilinear', align_corners=False, antialias=False)[0].permute(1, 2, 0).numpy()

class Refs(dict):
    # one failing peer call must not lose the others: the device run is one shot
    def __setitem__(self, k, fn):
        try:
            super().__setitem__(k, fn() if callable(fn) else fn)
        except Exception as e:
            print('FAILED', k, repr(e))

def refs_for(name, full):
    im = Image.open(os.path.join(src, name))
    im.load()
    r = Refs()
    if im.mode == 'L':
        for (w, h) in [(100, 100), (37, 53), (700, 600)]:
            r[f'bicubic_{w}x{h}'] = lambda: u8(im.resize((w, h), BIC))
            r[f'bilinear_{w}x{h}'] = lambda: u8(im.resize((w, h), BIL))
        return r
    im = im.convert('RGB')
    W, H = im.size
    sizes = [(224, 224), (W // 3, H // 3 + 1), (W * 2 // 3, H // 2), (W + 37, H + 11)] if not full else [(224, 224), (W // 4, H // 4)]
    for (w, h) in sizes:
        r[f'bicubic_{w}x{h}'] = lambda: u8(im.resize((w, h), BIC))
        r[f'bilinear_{w}x{h}'] = lambda: u8(im.resize((w, h), BIL))
    # timm eval transform: resize shorter side to floor(224/0.875)=256 (bicubic), centre crop 224, ImageNet mean/std
    tf = create_transform(224, crop_pct=0.875, interpolation='bicubic', is_training=False)
    pre = T.Compose([t for t in tf.transforms if not isinstance(t, (T.ToTensor, T.Normalize)) and type(t).__name__ not in ('MaybeToTensor',)])
    r['timm224_u8'] = lambda: u8(pre(im))
    r['timm224_f32_slice'] = lambda: tf(im).numpy()[:, 96:128, 100:132].copy()
    tf2 = create_transform(96, crop_pct=0.9, interpolation='bilinear', is_training=False)
    r['timm96_cp09_bilinear_f32'] = lambda: tf2(im).numpy()
    # Hugging Face ViTImageProcessor: resize to 224x224 (PIL bilinear), rescale 1/255, normalise 0.5/0.5
    from transformers import ViTImageProcessor
    hf = lambda: ViTImageProcessor(size={'height': 224, 'width': 224}, use_fast=False)
    r['hf224_f32_slice'] = lambda: hf()(images=im, return_tensors='np')['pixel_values'][0][:, 96:128, 100:132].astype(np.float32)
    try:
        from transformers import ViTImageProcessorFast
        r['hffast224_f32_slice'] = lambda: ViTImageProcessorFast(size={'height': 224, 'width': 224})(images=im, return_tensors='pt')['pixel_values'][0][:, 96:128, 100:132].numpy().astype(np.float32)
    except Exception as e:
        print('fast processor failed', e)
    # Google (vision_transformer / big_vision eval): tf.image.resize bilinear without antialias, then (x-127.5)/127.5
    r['google96_f32'] = lambda: no_aa_bilinear(im, 96, 96)
    r['google_up_f32'] = lambda: no_aa_bilinear(im, H + 13, W + 7)[::7, ::7].copy()
    return r

for name, full in [('small.png', False), ('chelsea.png', True), ('coffee.png', True), ('rocket.ppm', True), ('camera.png', True)]:
    try:
        r = refs_for(name, full)
    except Exception as e:
        print('FAILED', name, repr(e)); continue
    np.savez_compressed(os.path.join(out, os.path.splitext(name)[0] + '.npz'), **r)
    print(name, {k: v.shape for k, v in r.items()})
json.dump(versions, open(os.path.join(out, 'versions.json'), 'w'))
print(versions)
