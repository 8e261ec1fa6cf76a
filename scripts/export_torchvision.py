#!/usr/bin/python3
"""Export torchvision classifiers to ONNX test fixtures.

Usage (Debian's python3, which has torch 1.13 + torchvision 0.14; not the python first on PATH):

    /usr/bin/python3 scripts/export_torchvision.py            # all fixtures
    /usr/bin/python3 scripts/export_torchvision.py --force    # re-export even if present
    /usr/bin/python3 scripts/export_torchvision.py --out DIR  # default: fixtures/torchvision
    /usr/bin/python3 scripts/export_torchvision.py --only resnet18_eval_op13

Writes into fixtures/torchvision/ (git-ignored):

    resnet18_{eval,train}_op{13,17}.onnx              1000 classes
    mobilenet_v3_small_{eval,train}_op{13,17}.onnx    1000 classes
    resnet18_eval_op17_c10.onnx, mobilenet_v3_small_eval_op17_c10.onnx   10 classes
    squeezenet1_1_eval_op13.onnx                      1x1-conv classifier head

All models have random weights (torch.manual_seed(0) before construction), input
`input` [N,3,224,224] with a dynamic batch axis `N`, output `logits`.

- eval form: model.eval(), default export (BatchNorm folded into Conv, Dropout gone).
- train form: training=TrainingMode.TRAINING, do_constant_folding=False: keeps
  BatchNormalization (training_mode=1 from opset 14; extra running-stat outputs
  at opset 13) and Dropout nodes with a training_mode input.

Idempotent: a fixture that already exists is skipped unless --force. Every file is
written to a temporary name and renamed, so an interrupted run leaves no partial file.
"""
import os
import sys

from fixture_common import already_exported, export_onnx, fixture_args

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(os.path.dirname(HERE), "fixtures", "torchvision")


def specs():
    out = []
    for arch in ("resnet18", "mobilenet_v3_small"):
        for form in ("eval", "train"):
            for opset in (13, 17):
                out.append((f"{arch}_{form}_op{opset}", arch, form, opset, 1000))
        out.append((f"{arch}_eval_op17_c10", arch, "eval", 17, 10))
    out.append(("squeezenet1_1_eval_op13", "squeezenet1_1", "eval", 13, 1000))
    return out


def export(name, arch, form, opset, classes, out_dir):
    import torch
    import torchvision

    torch.manual_seed(0)
    model = getattr(torchvision.models, arch)(num_classes=classes)
    x = torch.randn(1, 3, 224, 224)
    path = os.path.join(out_dir, name + ".onnx")
    export_onnx(model, x, path, form, dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}}, opset_version=opset)
    return path


def main():
    args = fixture_args(__doc__, DEFAULT_OUT, "fixture names (without .onnx) to export")
    todo = [s for s in specs() if not args.only or s[0] in args.only]
    for name, arch, form, opset, classes in todo:
        path = os.path.join(args.out, name + ".onnx")
        if already_exported(path, args.force):
            continue
        export(name, arch, form, opset, classes, args.out)
        print(f"export  {path} ({os.path.getsize(path) / 1e6:.1f} MB)")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
