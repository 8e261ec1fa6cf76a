/**
 * torchvision's ResNet-18: conv1 7×7/2 + bn1 + relu + maxpool 3×3/2, layer1..layer4 of two
 * BasicBlocks (64/128/256/512; a 1×1/2 conv + BN downsample in the first block of layers 2–4),
 * avgpool, flatten, fc. Convs: kaiming_normal(fan_out); BN 1/0; fc: PyTorch's Linear default.
 */
import type { Model } from '../ir/graph.js';
import { IMAGENET_NORM, NetBuilder } from './layers.js';

function basicBlock(nb: NetBuilder, path: string, x: string, cin: number, cout: number, stride: number): string {
  const conv = (k: number, ci: number, s: number) => ({ cin: ci, cout, kernel: k, stride: s, bias: false, init: 'kaiming-normal-fan-out' as const });
  let y = nb.convBnAct(x, { conv: `${path}.conv1`, bn: `${path}.bn1`, act: `${path}.relu` }, conv(3, cin, stride), { act: 'Relu' });
  y = nb.convBnAct(y, { conv: `${path}.conv2`, bn: `${path}.bn2` }, conv(3, cout, 1));
  let identity = x;
  if (stride !== 1 || cin !== cout)
    identity = nb.convBnAct(x, { conv: `${path}.downsample.0`, bn: `${path}.downsample.1` }, { ...conv(1, cin, stride), pad: 0 });
  const sum = nb.op(path, 'Add', [y, identity]);
  // torchvision calls the block's one ReLU module twice; the exporter names the second call relu_1.
  return nb.act(`${path}.relu_1`, 'Relu', sum);
}

export function buildResnet18(opts: { classes: number; imageSize: number; seed: number }): Model {
  const nb = new NetBuilder(opts.seed, 'resnet18', opts.imageSize);
  let x = nb.convBnAct(
    'input',
    { conv: 'conv1', bn: 'bn1', act: 'relu' },
    { cin: 3, cout: 64, kernel: 7, stride: 2, pad: 3, bias: false, init: 'kaiming-normal-fan-out' },
    { act: 'Relu' },
  );
  x = nb.maxPool('maxpool', x, 3, 2, 1);
  let cin = 64;
  [64, 128, 256, 512].forEach((cout, i) => {
    const layer = `layer${i + 1}`;
    x = basicBlock(nb, `${layer}.0`, x, cin, cout, i === 0 ? 1 : 2);
    x = basicBlock(nb, `${layer}.1`, x, cout, cout, 1);
    cin = cout;
  });
  x = nb.globalAvgPool('avgpool', x);
  x = nb.flatten('', x);
  const logits = nb.linear('fc', x, 512, opts.classes, 'torch-default', 'logits');
  return nb.finish(logits, opts.classes, { kind: 'resnet18', norm: IMAGENET_NORM });
}
