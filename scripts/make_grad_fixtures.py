#!/usr/bin/python3
"""Generates PyTorch reference gradients for the autodiff tests.

Run with Debian's python (torch 1.13 is a dev-only tool, never a runtime dependency):
    /usr/bin/python3 scripts/make_grad_fixtures.py
Writes test/fixtures/grad/<case>/{model.onnx, *.bin, manifest.json}:
  - model.onnx: the module exported in training form (opset 17,
    TrainingMode.TRAINING, no constant folding), input 'x', output 'y';
  - x.bin, R.bin: input and fixed projection; loss = sum(y * R);
  - init/<name>.bin: every state tensor used (parameters and running stats
    BEFORE the step; the test writes them into the ONNX initializers, because
    tracing for export itself runs a training-mode forward);
  - grad/<name>.bin: d loss / d parameter from torch autograd;
  - stats/<name>.bin: running_mean / running_var after the training step;
  - manifest.json: shapes, loss, file list, momentum.
All .bin files are raw little-endian float32.
"""
import copy
import json
import os
import shutil

import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'grad')


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        idt = x if self.downsample is None else self.downsample(x)
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + idt)


class SqueezeExcite(nn.Module):
    def __init__(self, c, s):
        super().__init__()
        self.fc1 = nn.Conv2d(c, s, 1)
        self.fc2 = nn.Conv2d(s, c, 1)

    def forward(self, x):
        w = F.adaptive_avg_pool2d(x, 1)
        w = F.hardsigmoid(self.fc2(F.relu(self.fc1(w))))
        return x * w


class InvertedResidual(nn.Module):
    """MobileNetV3 block: expand 1x1 + BN + hardswish, depthwise kxk + BN + hardswish, SE, project 1x1 + BN."""

    def __init__(self, cin, exp, cout, k, stride):
        super().__init__()
        self.expand = nn.Sequential(nn.Conv2d(cin, exp, 1, bias=False), nn.BatchNorm2d(exp), nn.Hardswish())
        self.dw = nn.Sequential(nn.Conv2d(exp, exp, k, stride, k // 2, groups=exp, bias=False), nn.BatchNorm2d(exp), nn.Hardswish())
        self.se = SqueezeExcite(exp, max(8, exp // 4))
        self.project = nn.Sequential(nn.Conv2d(exp, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.project(self.se(self.dw(self.expand(x))))
        return x + y if self.residual else y


def randomize(m, g):
    """Non-trivial BN affine parameters and running stats, so every term matters."""
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            with torch.no_grad():
                mod.weight.copy_(1 + 0.3 * torch.randn(mod.weight.shape, generator=g))
                mod.bias.copy_(0.2 * torch.randn(mod.bias.shape, generator=g))
                mod.running_mean.copy_(0.1 * torch.randn(mod.running_mean.shape, generator=g))
                mod.running_var.copy_(1 + 0.2 * torch.rand(mod.running_var.shape, generator=g))


def save(path, t):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    t.detach().contiguous().to(torch.float32).numpy().astype('<f4').tofile(path)


def make(name, module, xshape, seed):
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    randomize(module, g)
    module.train()
    state = copy.deepcopy(module.state_dict())
    x = torch.randn(xshape, generator=g)
    out_dir = os.path.join(ROOT, name)
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(out_dir)
    torch.onnx.export(
        module, (x,), os.path.join(out_dir, 'model.onnx'), opset_version=17,
        training=torch.onnx.TrainingMode.TRAINING, do_constant_folding=False,
        input_names=['x'], output_names=['y'],
    )
    module.load_state_dict(state)  # undo the running-stat update done while tracing
    module.zero_grad()
    y = module(x)
    R = torch.randn(y.shape, generator=g)
    loss = (y * R).sum()
    loss.backward()
    manifest = {'x': list(xshape), 'y': list(y.shape), 'loss': loss.item(), 'momentum_torch': 0.1,
                'init': {}, 'grad': {}, 'stats': {}}
    save(os.path.join(out_dir, 'x.bin'), x)
    save(os.path.join(out_dir, 'R.bin'), R)
    params = dict(module.named_parameters())
    for k, v in state.items():
        if not v.is_floating_point():
            continue
        fn = k.replace('/', '_') + '.bin'
        save(os.path.join(out_dir, 'init', fn), v)
        manifest['init'][k] = {'file': 'init/' + fn, 'shape': list(v.shape)}
        if k in params:
            save(os.path.join(out_dir, 'grad', fn), params[k].grad)
            manifest['grad'][k] = {'file': 'grad/' + fn, 'shape': list(v.shape)}
    for k, v in module.state_dict().items():
        if k.endswith('running_mean') or k.endswith('running_var'):
            fn = k + '.bin'
            save(os.path.join(out_dir, 'stats', fn), v)
            manifest['stats'][k] = {'file': 'stats/' + fn, 'shape': list(v.shape)}
    with open(os.path.join(out_dir, 'manifest.json'), 'w') as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
    print(name, 'loss', loss.item())


if __name__ == '__main__':
    torch.manual_seed(0)
    make('basicblock', BasicBlock(16, 16, 1), (4, 16, 8, 8), 1)
    make('basicblock_down', BasicBlock(8, 16, 2), (4, 8, 8, 8), 2)
    make('mbv3_block_s2', InvertedResidual(16, 48, 24, 5, 2), (4, 16, 8, 8), 3)
    make('mbv3_block_s1', InvertedResidual(16, 48, 16, 5, 1), (4, 16, 8, 8), 4)
