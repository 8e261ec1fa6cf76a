/** Small graphs built in-test (no files needed): a toy ResNet with or without module scopes, a chain CNN. */
import { Graph, makeModel, type Model } from '../../src/ir/graph.js';
import { GraphBuilder } from '../../src/ir/builder.js';
import { f } from '../../src/ir/attrs.js';
import { floatTensor } from '../../src/ir/tensor.js';
import { DataType } from '../../src/ir/types.js';

export function rng(seed = 1): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296 - 0.5;
  };
}

export type BnMode = 'none' | 'eval' | 'train13' | 'train14';

export class ToyBuilder {
  readonly g = new Graph();
  readonly b = new GraphBuilder(this.g);
  readonly r = rng(7);
  private k = 0;
  constructor(readonly scoped: boolean, readonly bn: BnMode = 'none') {}

  name(scoped: string): string {
    return this.scoped ? scoped : `n${this.k++}`;
  }
  param(name: string, dims: number[], scale = 0.3): string {
    const n = dims.reduce((a, b) => a * b, 1);
    return this.b.initializer(floatTensor(name, dims, Array.from({ length: n }, () => this.r() * scale)));
  }
  input(c: number, size: number, batch: number | string = 'N'): string {
    this.g.inputs.push({ name: 'image', type: { kind: 'tensor', elemType: DataType.FLOAT, shape: [batch, c, size, size] } });
    return 'image';
  }
  conv(x: string, cin: number, cout: number, k: number, stride: number, scope: string, group = 1): string {
    const w = this.param(`${scope}.weight`, [cout, cin / group, k, k]);
    const inputs = [x, w];
    if (this.bn === 'none') inputs.push(this.param(`${scope}.bias`, [cout], 0.1));
    const p = (k - 1) >> 1;
    let y = this.b.node('Conv', inputs, { kernel_shape: [k, k], strides: [stride, stride], pads: [p, p, p, p], group }, { name: this.name(`/${scope.replace(/\./g, '/')}/Conv`.replace(/\/(\w+)\/(\d+)\//g, '/$1/$1.$2/')) })[0]!;
    if (this.bn !== 'none') y = this.batchNorm(y, cout, scope);
    return y;
  }
  /** BN named after the conv scope ('/layer1/layer1.0/conv1/Conv' → '/layer1/layer1.0/bn1/...'). */
  batchNorm(x: string, c: number, scope: string): string {
    const s = this.param(`${scope}.bn.weight`, [c], 0.2);
    const bb = this.param(`${scope}.bn.bias`, [c], 0.2);
    const m = this.param(`${scope}.bn.running_mean`, [c], 0.2);
    const v = this.b.initializer(floatTensor(`${scope}.bn.running_var`, [c], Array.from({ length: c }, () => 1 + Math.abs(this.r()))));
    const attrs: Record<string, number | ReturnType<typeof f>> = { epsilon: f(1e-5), momentum: f(0.9) };
    if (this.bn === 'train14') attrs.training_mode = 1;
    const outs = this.bn === 'train13' ? 5 : this.bn === 'train14' ? 3 : 1;
    const name = this.name(`/${scope.replace(/\./g, '/')}/BatchNormalization`.replace(/\/(\w+)\/(\d+)\//g, '/$1/$1.$2/'));
    return this.b.node('BatchNormalization', [x, s, bb, m, v], attrs, { name, outputs: outs })[0]!;
  }
  op(op: string, inputs: string[], scoped: string, attrs: Record<string, unknown> = {}): string {
    return this.b.node(op, inputs, attrs as never, { name: this.name(scoped) })[0]!;
  }
  output(y: string, classes: number, batch: number | string = 'N'): void {
    this.g.outputs.push({ name: y, type: { kind: 'tensor', elemType: DataType.FLOAT, shape: [batch, classes] } });
  }
}

/**
 * stem (conv 3→8 + relu + maxpool) → layer1 (one residual unit, 8 ch) → layer2 (residual unit with
 * stride-2 1×1 downsample, 16 ch) → GAP → Flatten → Gemm. 16×16 input.
 */
export function toyResNet(opts: { scoped?: boolean; bn?: BnMode; classes?: number; opset?: number } = {}): Model {
  const t = new ToyBuilder(opts.scoped ?? true, opts.bn ?? 'none');
  const classes = opts.classes ?? 5;
  let x = t.input(3, 16);
  x = t.conv(x, 3, 8, 3, 1, 'conv1');
  x = t.op('Relu', [x], '/relu/Relu');
  x = t.op('MaxPool', [x], '/maxpool/MaxPool', { kernel_shape: [2, 2], strides: [2, 2] });
  // layer1.0
  let y = t.conv(x, 8, 8, 3, 1, 'layer1.0.conv1');
  y = t.op('Relu', [y], '/layer1/layer1.0/relu/Relu');
  y = t.conv(y, 8, 8, 3, 1, 'layer1.0.conv2');
  y = t.op('Add', [y, x], '/layer1/layer1.0/Add');
  x = t.op('Relu', [y], '/layer1/layer1.0/relu_1/Relu');
  // layer2.0 with downsample
  y = t.conv(x, 8, 16, 3, 2, 'layer2.0.conv1');
  y = t.op('Relu', [y], '/layer2/layer2.0/relu/Relu');
  y = t.conv(y, 16, 16, 3, 1, 'layer2.0.conv2');
  const d = t.conv(x, 8, 16, 1, 2, 'layer2.0.downsample.0');
  y = t.op('Add', [y, d], '/layer2/layer2.0/Add');
  x = t.op('Relu', [y], '/layer2/layer2.0/relu_1/Relu');
  x = t.op('GlobalAveragePool', [x], '/avgpool/GlobalAveragePool');
  x = t.op('Flatten', [x], '/Flatten', { axis: 1 });
  const w = t.param('fc.weight', [classes, 16]);
  const bias = t.param('fc.bias', [classes], 0.1);
  const out = t.b.node('Gemm', [x, w, bias], { transB: 1 }, { name: t.name('/fc/Gemm'), outputs: ['logits'] })[0]!;
  t.output(out, classes);
  return makeModel(t.g, opts.opset ?? 13);
}

/** Chain CNN without scopes: [conv relu pool] ×2, conv relu, flatten, gemm (8×8 input). */
export function toyChainCnn(classes = 4): Model {
  const t = new ToyBuilder(false);
  let x = t.input(3, 8);
  x = t.conv(x, 3, 4, 3, 1, 'c0');
  x = t.op('Relu', [x], '');
  x = t.op('MaxPool', [x], '', { kernel_shape: [2, 2], strides: [2, 2] });
  x = t.conv(x, 4, 6, 3, 1, 'c1');
  x = t.op('Relu', [x], '');
  x = t.op('MaxPool', [x], '', { kernel_shape: [2, 2], strides: [2, 2] });
  x = t.conv(x, 6, 6, 3, 1, 'c2');
  x = t.op('Relu', [x], '');
  x = t.op('Flatten', [x], '', { axis: 1 });
  const out = t.b.node('Gemm', [x, t.param('fc.w', [classes, 24]), t.param('fc.b', [classes])], { transB: 1 }, { name: 'fc', outputs: ['logits'] })[0]!;
  t.output(out, classes);
  return makeModel(t.g, 13);
}
