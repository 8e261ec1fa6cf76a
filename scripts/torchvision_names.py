#!/usr/bin/python3
"""Reference exports of torchvision models, for test/models (needs torch + torchvision).

Usage: torchvision_names.py resnet18|mobilenetv3-small OUT.onnx [--classes J] [--size S]
                            [--dump PREFIX] [--seed N]

Writes OUT.onnx: the model exported to ONNX opset 17 in training mode without constant
folding (BatchNorm stays unfolded, node and initializer names as the exporter gives them).
With --dump, also writes PREFIX.bin + PREFIX.json: every parameter and buffer of the model
(after BatchNorm statistics and affine parameters are randomised, so they are not identity),
an input batch of 2 and the model's eval-mode logits for it, all float32 little-endian;
the JSON maps each name to {"offset": bytes, "dims": [...]}.
Prints one JSON line: {"params": <trainable parameter count>}.
"""
import argparse
import json
import sys
import warnings

warnings.filterwarnings("ignore")
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402
from fixture_common import randomise_batchnorm  # noqa: E402


def dump(model: torch.nn.Module, size: int, prefix: str) -> None:
    randomise_batchnorm(model, affine=True)
    with torch.no_grad():
        model.eval()
        x = torch.randn(2, 3, size, size)
        logits = model(x)
    entries = {}
    chunks = []
    offset = 0
    items = [(k, v) for k, v in model.state_dict().items() if v.dtype == torch.float32]
    items += [("__input__", x), ("__logits__", logits)]
    for name, t in items:
        a = t.detach().contiguous().numpy().astype("<f4")
        entries[name] = {"offset": offset, "dims": list(a.shape)}
        chunks.append(a.tobytes())
        offset += a.nbytes
    with open(prefix + ".bin", "wb") as f:
        f.write(b"".join(chunks))
    with open(prefix + ".json", "w") as f:
        json.dump(entries, f)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("kind", choices=["resnet18", "mobilenetv3-small"])
    ap.add_argument("out")
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--dump")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    ctor = {"resnet18": torchvision.models.resnet18, "mobilenetv3-small": torchvision.models.mobilenet_v3_small}[a.kind]
    model = ctor(num_classes=a.classes)
    if a.dump:
        dump(model, a.size, a.dump)
    # Training-mode export runs the model in training mode (updating BN statistics): dump first.
    torch.onnx.export(
        model,
        torch.zeros(1, 3, a.size, a.size),
        a.out,
        opset_version=17,
        training=torch.onnx.TrainingMode.TRAINING,
        do_constant_folding=False,
        input_names=["input"],
        output_names=["logits"],
    )
    params = sum(p.numel() for p in model.parameters())
    json.dump({"params": params}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
