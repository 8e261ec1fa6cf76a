/**
 * torchvision's mobilenet_v3_small: features.0 (conv 3→16 3×3/2 + BN + Hardswish),
 * features.1..11 inverted residual blocks, features.12 (1×1 conv 96→576 + BN + Hardswish),
 * avgpool, classifier Linear 576→1024, Hardswish, Dropout(0.2), Linear 1024→J.
 * BN eps 0.001, momentum 0.01; convs kaiming_normal(fan_out), biases 0; Linear normal(0, 0.01).
 * The classifier's Dropout is not in the inference graph (recorded as `sff.dropout`), but
 * the last Linear keeps torchvision's index: classifier.3.
 */
import type { Model } from '../ir/graph.js';
import { IMAGENET_NORM, NetBuilder, type Activation, type BnSpec, type ConvSpec } from './layers.js';

const BN: BnSpec = { eps: 0.001, momentum: 0.01 };

interface BlockConfig {
  cin: number;
  kernel: number;
  expanded: number;
  cout: number;
  se: boolean;
  act: Activation;
  stride: number;
}

const cfg = (cin: number, kernel: number, expanded: number, cout: number, se: boolean, act: 'RE' | 'HS', stride: number): BlockConfig => ({
  cin, kernel, expanded, cout, se, act: act === 'RE' ? 'Relu' : 'HardSwish', stride,
});

/** torchvision's inverted residual settings for mobilenet_v3_small. */
export const MOBILENETV3_SMALL_BLOCKS: readonly BlockConfig[] = [
  cfg(16, 3, 16, 16, true, 'RE', 2),
  cfg(16, 3, 72, 24, false, 'RE', 2),
  cfg(24, 3, 88, 24, false, 'RE', 1),
  cfg(24, 5, 96, 40, true, 'HS', 2),
  cfg(40, 5, 240, 40, true, 'HS', 1),
  cfg(40, 5, 240, 40, true, 'HS', 1),
  cfg(40, 5, 120, 48, true, 'HS', 1),
  cfg(48, 5, 144, 48, true, 'HS', 1),
  cfg(48, 5, 288, 96, true, 'HS', 2),
  cfg(96, 5, 576, 96, true, 'HS', 1),
  cfg(96, 5, 576, 96, true, 'HS', 1),
];

export const MOBILENET_DROPOUT = 0.2;

/** torchvision's _make_divisible(v, 8). */
export function makeDivisible(v: number, divisor = 8): number {
  let n = Math.max(divisor, Math.floor((v + divisor / 2) / divisor) * divisor);
  if (n < 0.9 * v) n += divisor;
  return n;
}

const convSpec = (cin: number, cout: number, kernel: number, extra: Partial<ConvSpec> = {}): ConvSpec => ({
  cin, cout, kernel, bias: false, init: 'kaiming-normal-fan-out', ...extra,
});

/** Conv2dNormActivation at `path`: conv at path.0, BN at path.1, activation at path.2. */
function convNormAct(nb: NetBuilder, path: string, x: string, spec: ConvSpec, act?: Activation): string {
  return nb.convBnAct(x, { conv: `${path}.0`, bn: `${path}.1`, act: `${path}.2` }, spec, { bn: BN, act });
}

function squeezeExcitation(nb: NetBuilder, path: string, x: string, channels: number): string {
  const squeeze = makeDivisible(channels / 4);
  let s = nb.globalAvgPool(`${path}.avgpool`, x);
  s = nb.conv(`${path}.fc1`, s, convSpec(channels, squeeze, 1, { bias: true }));
  s = nb.act(`${path}.activation`, 'Relu', s);
  s = nb.conv(`${path}.fc2`, s, convSpec(squeeze, channels, 1, { bias: true }));
  s = nb.act(`${path}.scale_activation`, 'HardSigmoid', s);
  return nb.op(path, 'Mul', [s, x]);
}

function invertedResidual(nb: NetBuilder, path: string, x: string, c: BlockConfig): string {
  let y = x;
  let i = 0;
  const sub = () => `${path}.block.${i++}`;
  if (c.expanded !== c.cin) y = convNormAct(nb, sub(), y, convSpec(c.cin, c.expanded, 1), c.act);
  y = convNormAct(nb, sub(), y, convSpec(c.expanded, c.expanded, c.kernel, { stride: c.stride, groups: c.expanded }), c.act);
  if (c.se) y = squeezeExcitation(nb, sub(), y, c.expanded);
  y = convNormAct(nb, sub(), y, convSpec(c.expanded, c.cout, 1));
  return c.stride === 1 && c.cin === c.cout ? nb.op(path, 'Add', [y, x]) : y;
}

export function buildMobilenetV3Small(opts: { classes: number; imageSize: number; seed: number }): Model {
  const nb = new NetBuilder(opts.seed, 'mobilenetv3-small', opts.imageSize);
  let x = convNormAct(nb, 'features.0', 'input', convSpec(3, 16, 3, { stride: 2 }), 'HardSwish');
  MOBILENETV3_SMALL_BLOCKS.forEach((c, i) => {
    x = invertedResidual(nb, `features.${i + 1}`, x, c);
  });
  const last = MOBILENETV3_SMALL_BLOCKS[MOBILENETV3_SMALL_BLOCKS.length - 1]!.cout;
  x = convNormAct(nb, 'features.12', x, convSpec(last, 6 * last, 1), 'HardSwish');
  x = nb.globalAvgPool('avgpool', x);
  x = nb.flatten('', x);
  x = nb.linear('classifier.0', x, 6 * last, 1024, 'normal-0.01');
  x = nb.act('classifier.1', 'HardSwish', x);
  const logits = nb.linear('classifier.3', x, 1024, opts.classes, 'normal-0.01', 'logits');
  return nb.finish(logits, opts.classes, { kind: 'mobilenetv3-small', norm: IMAGENET_NORM, dropout: MOBILENET_DROPOUT });
}
