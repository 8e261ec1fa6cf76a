"""What the fixture scripts share: their command line, the rule that skips a graph already
exported, the export itself (as users run it), and BatchNorm statistics that are not the identity (so folding and normalisation are
really exercised). Imported by export_torchvision.py, export_corpus.py and torchvision_names.py
from this folder; torch is imported only where a model is touched, so --help works without it."""
import argparse
import os
import warnings


def fixture_args(doc, default_out, only_help, extra=()):
    """Parses --out, --force, --only and the script's own (flags, kwargs) pairs; creates --out."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=default_out)
    ap.add_argument("--force", action="store_true")
    for flag, kwargs in extra:
        ap.add_argument(flag, **kwargs)
    ap.add_argument("--only", nargs="*", help=only_help)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    return args


def already_exported(path, force):
    """True (and says so) when a non-empty export is there and --force was not given."""
    if os.path.exists(path) and os.path.getsize(path) > 0 and not force:
        print(f"ok      {path}")
        return True
    return False


def randomise_batchnorm(model, affine=False):
    """Running mean ~ N(0, 0.1²), variance ~ U(0.5, 1.5); with affine, weight ~ U(0.5, 1.5) and
    bias ~ N(0, 0.1²). Draws in module order from torch's global generator, so a seeded caller
    gets the same model every time."""
    import torch

    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                c = mod.num_features
                mod.running_mean.copy_(torch.randn(c) * 0.1)
                mod.running_var.copy_(torch.rand(c) + 0.5)
                if affine:
                    mod.weight.copy_(torch.rand(c) + 0.5)
                    mod.bias.copy_(torch.randn(c) * 0.1)


def export_onnx(model, x, path, mode, **kwargs):
    """torch.onnx.export as users run it: eval mode with constant folding (BatchNorm folded away),
    or training mode without (BatchNorm kept, with its running statistics). Input "input", output
    "logits"; written to path + ".tmp" and renamed, so an interrupted run leaves no partial file."""
    import torch

    if mode == "eval":
        model.eval()
        kwargs["do_constant_folding"] = True
    else:
        model.train()
        kwargs["training"] = torch.onnx.TrainingMode.TRAINING
        kwargs["do_constant_folding"] = False
    tmp = path + ".tmp"
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, x, tmp, input_names=["input"], output_names=["logits"], **kwargs)
    os.replace(tmp, path)
