#!/usr/bin/python3
"""Reference for one SFF block's train step, from PyTorch (SPEC §2-3).

Run with Debian's python3 (python3-torch 1.13):  /usr/bin/python3 scripts/make_sff_fixture.py
Writes test/fixtures/sff/step.json: a CNNB-style block (conv 3x3 + BN + ReLU + max-pool),
per-sample LayerNorm with a per-channel affine, a 3x3 aux conv to J classes, goodness =
mean over (h,w) of A^2, softmax cross-entropy on goodness, AdamW; two steps. The test
rebuilds the same block with this project's graph builder and compares every number.
PyTorch is used only here, never at run time.
"""
import json
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
N, C_IN, C, H, J = 4, 3, 6, 8, 3
LR, WD = 1e-2, 1e-2

# No conv bias: before a training-mode BN its gradient is zero up to rounding, and AdamW
# would turn that rounding noise into full-size steps in both implementations alike.
conv = nn.Conv2d(C_IN, C, 3, padding=1, bias=False)
bn = nn.BatchNorm2d(C, momentum=0.1, eps=1e-5)
with torch.no_grad():
    bn.weight.uniform_(0.5, 1.5)
    bn.bias.uniform_(-0.2, 0.2)
ln = nn.GroupNorm(1, C, eps=1e-5)
with torch.no_grad():
    ln.weight.uniform_(0.5, 1.5)
    ln.bias.uniform_(-0.2, 0.2)
aux = nn.Conv2d(C, J, 3, padding=1)
params = [conv.weight, bn.weight, bn.bias, ln.weight, ln.bias, aux.weight, aux.bias]
init = [p.detach().clone() for p in params]
opt = torch.optim.AdamW(params, lr=LR, weight_decay=WD)

xs = [torch.randn(N, C_IN, H, H) for _ in range(2)]
ys = [torch.randint(0, J, (N,)) for _ in range(2)]
steps = []
for x, y in zip(xs, ys):
    opt.zero_grad()
    out = F.max_pool2d(F.relu(bn(conv(x))), 2)
    z = ln(out)
    a = aux(z)
    g = (a * a).mean(dim=(2, 3))
    loss = F.cross_entropy(g, y)
    loss.backward()
    opt.step()
    steps.append({
        "x": x.flatten().tolist(), "labels": y.tolist(), "loss": loss.item(),
        "goodness": g.detach().flatten().tolist(), "next": z.detach().flatten().tolist(),
        "params_after": [p.detach().flatten().tolist() for p in params],
        "running_mean": bn.running_mean.flatten().tolist(), "running_var": bn.running_var.flatten().tolist(),
    })

fixture = {
    "about": "one SFF block (conv3x3 no bias+BN+ReLU+maxpool2, LayerNorm(C,H,W) with per-channel affine, aux conv3x3, CE on goodness), AdamW lr 1e-2 wd 1e-2, two steps; torch " + torch.__version__,
    "N": N, "C_in": C_IN, "C": C, "H": H, "J": J, "lr": LR, "weight_decay": WD,
    "param_names": ["conv.weight", "bn.weight", "bn.bias", "ln.weight", "ln.bias", "aux.weight", "aux.bias"],
    "param_shapes": [list(p.shape) for p in params],
    "init": [p.flatten().tolist() for p in init],
    "steps": steps,
}
out = os.path.join(os.path.dirname(__file__), "..", "test", "fixtures", "sff", "step.json")
with open(out, "w") as f:
    json.dump(fixture, f)
print("wrote", os.path.normpath(out))
