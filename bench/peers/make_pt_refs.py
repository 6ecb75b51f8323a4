# Makes real torch.save files from refs-small weights, for VitSharp's .pt reader tests (run on the GPU machine, which has torch).
import argparse, collections, os, sys
import torch
from safetensors.torch import load_file

out = os.environ.get("OUT", ".")
small = "tests/VitSharp.Tests/Data/refs-small/vit_tiny48"
sd = load_file(f"{small}/model.safetensors")
torch.save(sd, f"{out}/vit_tiny48.pt")  # a plain state dict

# A training checkpoint as timm/DeiT scripts write: nested, DDP 'module.' prefix, bf16, a non-contiguous tensor,
# extra Python objects, and an object whose unpickling would run a shell command if the reader executed pickles.
class Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/vitsharp-pickle-executed",))

nested = collections.OrderedDict(("module." + k, v.to(torch.bfloat16)) for k, v in sd.items())
nested["module.head.weight"] = sd["head.weight"].t().contiguous().t()  # fp32, strides (1, 10)
assert not nested["module.head.weight"].is_contiguous()
torch.save({"epoch": 3, "arch": "vit_tiny48", "args": argparse.Namespace(lr=0.1), "state_dict": nested, "evil": Evil()},
           f"{out}/vit_tiny48_train.pth")

hf = load_file(f"{small}/hf/model.safetensors")
torch.save(hf, f"{out}/pytorch_model.bin")
print("torch", torch.__version__, "wrote", sorted(os.listdir(out)))
