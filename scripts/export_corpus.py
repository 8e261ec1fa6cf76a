#!/usr/bin/python3
"""Export a corpus of torchvision CNNs the way users export them, for the importer tests and sweep.

Usage (Debian's python3, which has torch 1.13 + torchvision 0.14; not the python first on PATH):

    /usr/bin/python3 scripts/export_corpus.py             # full corpus
    /usr/bin/python3 scripts/export_corpus.py --ci        # the CI subset (see CI_VARIANT_ARCHS)
    /usr/bin/python3 scripts/export_corpus.py --only resnet18 densenet121 --force
    /usr/bin/python3 scripts/export_corpus.py --out DIR   # default: fixtures/corpus

Writes DIR/<arch>_<mode>_<variant>.onnx (git-ignored) and DIR/manifest.json listing every
graph with its family, mode, opset and which axes are dynamic. Derived copies (float16,
external data, QDQ, opset 21) are added afterwards by `node dist/corpus/derive.js DIR`.

Every model is built with torch.manual_seed(0) random weights and randomised BatchNorm
statistics (so folding them is not an identity), 10 classes, and exported from a 64x64 dummy
image (small enough to keep the corpus quick to export and train; every family here accepts it).

- mode `eval`: model.eval(), default export (constant folding on: BN folded into Conv where
  the exporter can, Dropout gone).
- mode `train`: TrainingMode.TRAINING, no constant folding: BatchNormalization nodes with
  training_mode / running-statistics outputs, Dropout with a training flag, and the
  exporter's deduplicated initializers aliased through Identity nodes.
- variant `op11_fixed`: opset 11, batch 1 and 64x64 fixed, initializers also listed as graph
  inputs (keep_initializers_as_inputs=True, the pre-IR-4 style older tools still write).
- variant `op13_batch`: opset 13, dynamic batch, 64x64 fixed.
- variant `op17_dyn`: opset 17, dynamic batch, height and width.

A combination PyTorch itself cannot export (EfficientNet's stochastic depth in training mode:
no ONNX Bernoulli in 1.13) is listed in the manifest with `exportError` and no file.

Idempotent: a graph that already exists is skipped unless --force. Files are written to a
temporary name and renamed, so an interrupted run leaves no partial file.
"""
import json
import os
import sys
import time

from fixture_common import already_exported, export_onnx, fixture_args, randomise_batchnorm

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(os.path.dirname(HERE), "fixtures", "corpus")
SIZE = 64
CLASSES = 10

# arch → family (the README table's row).
ARCHS = {
    "resnet18": "ResNet",
    "resnet34": "ResNet",
    "resnet50": "ResNet",
    "mobilenet_v2": "MobileNet V2",
    "mobilenet_v3_small": "MobileNet V3",
    "mobilenet_v3_large": "MobileNet V3",
    "efficientnet_b0": "EfficientNet",
    "regnet_x_400mf": "RegNet",
    "regnet_y_400mf": "RegNet",
    "shufflenet_v2_x0_5": "ShuffleNet V2",
    "squeezenet1_1": "SqueezeNet",
    "mnasnet0_5": "MnasNet",
    "googlenet": "GoogLeNet",
    "densenet121": "DenseNet",
}

VARIANTS = {
    # name: (opset, dynamic batch, dynamic H/W, initializers as inputs)
    "op11_fixed": (11, False, False, True),
    "op13_batch": (13, True, False, False),
    "op17_dyn": (17, True, True, False),
}

# --ci keeps every arch at op17_dyn (both modes) and the other opsets only for these
# (one plain, one squeeze-excitation/hardswish, one with Concat-heavy blocks): the other
# opset variants exercise the same importer paths and are left to the full sweep.
CI_VARIANT_ARCHS = ("resnet18", "mobilenet_v3_small", "densenet121")
CI_SKIP_ARCHS = ("resnet34",)  # same graph structure as resnet18, only longer


def build(arch):
    import torch
    import torchvision

    torch.manual_seed(0)
    kwargs = {"num_classes": CLASSES}
    if arch == "googlenet":
        # The auxiliary classifiers only exist in training; users export the main output.
        kwargs.update(aux_logits=False, init_weights=True)
    model = getattr(torchvision.models, arch)(**kwargs)
    randomise_batchnorm(model)
    return model


def export(arch, mode, variant, path):
    import torch

    opset, dyn_batch, dyn_hw, inits_as_inputs = VARIANTS[variant]
    model = build(arch)
    x = torch.randn(1, 3, SIZE, SIZE)
    axes = {}
    if dyn_batch:
        axes = {"input": {0: "N"}, "logits": {0: "N"}}
    if dyn_hw:
        axes["input"] = {**axes.get("input", {}), 2: "H", 3: "W"}
    kwargs = dict(opset_version=opset, keep_initializers_as_inputs=inits_as_inputs)
    if axes:
        kwargs["dynamic_axes"] = axes
    export_onnx(model, x, path, mode, **kwargs)
    return {
        "opset": opset,
        "dynamicBatch": dyn_batch,
        "dynamicHW": dyn_hw,
        "initializersAsInputs": inits_as_inputs,
    }


def plan(ci, only):
    out = []
    for arch in ARCHS:
        if only and arch not in only:
            continue
        if ci and arch in CI_SKIP_ARCHS:
            continue
        for mode in ("eval", "train"):
            for variant in VARIANTS:
                if ci and variant != "op17_dyn" and arch not in CI_VARIANT_ARCHS:
                    continue
                out.append((arch, mode, variant))
    return out


def main():
    ci_flag = ("--ci", {"action": "store_true", "help": "the CI subset: every arch at opset 17, other opsets for a few"})
    args = fixture_args(__doc__, DEFAULT_OUT, "arch names to export", [ci_flag])
    manifest_path = os.path.join(args.out, "manifest.json")
    entries = {}
    if os.path.exists(manifest_path):
        with open(manifest_path) as f:
            for e in json.load(f)["graphs"]:
                entries[e["file"]] = e
    t0 = time.time()
    for arch, mode, variant in plan(args.ci, args.only):
        name = f"{arch}_{mode}_{variant}.onnx"
        path = os.path.join(args.out, name)
        info = {"opset": VARIANTS[variant][0], "dynamicBatch": VARIANTS[variant][1],
                "dynamicHW": VARIANTS[variant][2], "initializersAsInputs": VARIANTS[variant][3]}
        failed = entries.get(name, {}).get("exportError")
        if failed and not args.force:
            print(f"failed  {path} (earlier run: {failed})")
            info["exportError"] = failed
        elif not already_exported(path, args.force):
            t = time.time()
            try:
                info = export(arch, mode, variant, path)
                print(f"export  {path} ({os.path.getsize(path) / 1e6:.1f} MB, {time.time() - t:.1f} s)")
            except Exception as e:  # the exporter's own limits (e.g. Bernoulli in training mode) are corpus results too
                msg = str(e).splitlines()[0][:300]
                info["exportError"] = f"{type(e).__name__}: {msg}"
                if os.path.exists(path + ".tmp"):
                    os.remove(path + ".tmp")
                print(f"failed  {path}: {info['exportError']}")
            sys.stdout.flush()
        entries[name] = {
            "file": name,
            "arch": arch,
            "family": ARCHS[arch],
            "mode": mode,
            "variant": variant,
            "size": [SIZE, SIZE],
            "classes": CLASSES,
            **info,
        }
    manifest = {
        "generator": "scripts/export_corpus.py",
        "note": "derived copies (float16, external data, QDQ, opset 21) are added by dist/corpus/derive.js",
        "graphs": sorted(entries.values(), key=lambda e: e["file"]),
    }
    tmp = manifest_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(manifest, f, indent=1)
    os.replace(tmp, manifest_path)
    print(f"{len(entries)} graphs in {manifest_path} ({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
