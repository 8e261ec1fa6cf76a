/**
 * Shared layer helpers for the built-in models. Node and initializer names follow PyTorch's
 * ONNX exporter: a module at dotted path `features.1.block.0.0` gives nodes named
 * `/features/features.1/block/block.0/block.0.0/<OpType>`, outputs `<node>_output_0`, and
 * parameters `features.1.block.0.0.weight`.
 */
import { Graph, makeModel, setMetadata, type Model } from '../ir/graph.js';
import { f, toAttrs, type AttrValue } from '../ir/attrs.js';
import { floatTensor } from '../ir/tensor.js';
import { DataType } from '../ir/types.js';
import { InitRng, initBias, initWeight, type WeightInit } from './init.js';

/**
 * The exporter's scope for a dotted module path: each numeric segment is prefixed by its
 * parent's component ('layer1.0' → '/layer1/layer1.0'; 'features.1.block.0.0' →
 * '/features/features.1/block/block.0/block.0.0'). '' is the root scope.
 */
export function scopeOf(path: string): string {
  if (!path) return '';
  const parts: string[] = [];
  for (const seg of path.split('.')) {
    const prev = parts[parts.length - 1];
    parts.push(/^\d+$/.test(seg) && prev !== undefined ? `${prev}.${seg}` : seg);
  }
  return '/' + parts.join('/');
}

export interface ConvSpec {
  cin: number;
  cout: number;
  kernel: number;
  stride?: number;
  /** Default: kernel/2 (rounded down), i.e. "same" for odd kernels at stride 1. */
  pad?: number;
  groups?: number;
  bias: boolean;
  init: WeightInit;
}

export interface BnSpec {
  /** PyTorch's eps. */
  eps: number;
  /** PyTorch's momentum (weight of the new batch); ONNX's attribute is 1 − this. */
  momentum: number;
}

/** PyTorch's BatchNorm2d defaults. */
export const TORCH_BN: BnSpec = { eps: 1e-5, momentum: 0.1 };

export type Activation = 'Relu' | 'HardSwish' | 'HardSigmoid';

export interface Preprocess {
  size: [number, number];
  mean: number[];
  std: number[];
}

export const CIFAR_NORM = { mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616] };
export const IMAGENET_NORM = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };

/** Builds one network: input `input` [N,3,S,S] → … → output `logits` [N,J]. */
export class NetBuilder {
  readonly graph = new Graph();
  /** Node and value names used so far. */
  private readonly taken = new Set<string>(['input', 'logits']);

  constructor(
    readonly seed: number,
    name: string,
    readonly imageSize: number,
  ) {
    this.graph.name = name;
    this.graph.inputs.push({ name: 'input', type: { kind: 'tensor', elemType: DataType.FLOAT, shape: ['N', 3, imageSize, imageSize] } });
  }

  /** `base`, or `base_1`, `base_2`, … if taken (as the exporter disambiguates repeats). */
  private unique(base: string): string {
    let name = base;
    for (let k = 1; this.taken.has(name); k++) name = `${base}_${k}`;
    this.taken.add(name);
    return name;
  }

  /** Appends a node `<scope(path)>/<opType>` with one output; returns the output name. */
  op(path: string, opType: string, inputs: string[], attrs: Record<string, AttrValue | undefined> = {}, output?: string): string {
    const name = this.unique(`${scopeOf(path)}/${opType}`);
    const out = output ?? this.unique(`${name}_output_0`);
    this.graph.nodes.push({ name, opType, domain: '', inputs, outputs: [out], attrs: toAttrs(attrs) });
    return out;
  }

  /** Adds a float initializer; the name must be new. */
  param(name: string, dims: number[], values: Float32Array): string {
    if (this.graph.initializers.has(name) || this.taken.has(name)) throw new Error(`parameter '${name}' defined twice`);
    this.taken.add(name);
    this.graph.initializers.set(name, floatTensor(name, dims, values));
    return name;
  }

  private rng(tensor: string): InitRng {
    return new InitRng(this.seed, tensor);
  }

  conv(path: string, x: string, s: ConvSpec): string {
    const groups = s.groups ?? 1;
    if (s.cin % groups || s.cout % groups) throw new Error(`${path}: channels ${s.cin}→${s.cout} not divisible by groups ${groups}`);
    const dims = [s.cout, s.cin / groups, s.kernel, s.kernel];
    const wName = `${path}.weight`;
    const inputs = [x, this.param(wName, dims, initWeight(s.init, dims, this.rng(wName)))];
    if (s.bias) {
      const bName = `${path}.bias`;
      inputs.push(this.param(bName, [s.cout], initBias(s.init, dims, this.rng(bName))));
    }
    const pad = s.pad ?? Math.floor(s.kernel / 2);
    const stride = s.stride ?? 1;
    return this.op(path, 'Conv', inputs, {
      dilations: [1, 1],
      group: groups,
      kernel_shape: [s.kernel, s.kernel],
      pads: [pad, pad, pad, pad],
      strides: [stride, stride],
    });
  }

  /** BatchNormalization in inference form (running statistics; weight 1, bias 0, mean 0, var 1). */
  bn(path: string, x: string, channels: number, s: BnSpec = TORCH_BN): string {
    const ones = () => new Float32Array(channels).fill(1);
    const zeros = () => new Float32Array(channels);
    const inputs = [
      x,
      this.param(`${path}.weight`, [channels], ones()),
      this.param(`${path}.bias`, [channels], zeros()),
      this.param(`${path}.running_mean`, [channels], zeros()),
      this.param(`${path}.running_var`, [channels], ones()),
    ];
    return this.op(path, 'BatchNormalization', inputs, { epsilon: f(s.eps), momentum: f(1 - s.momentum) });
  }

  act(path: string, kind: Activation, x: string): string {
    // PyTorch's Hardsigmoid is relu6(x + 3) / 6: ONNX HardSigmoid with alpha 1/6, beta 0.5.
    const attrs = kind === 'HardSigmoid' ? { alpha: f(1 / 6), beta: f(0.5) } : {};
    return this.op(path, kind, [x], attrs);
  }

  /** Conv (+ BN) (+ activation), each at its own module path. */
  convBnAct(
    x: string,
    paths: { conv: string; bn?: string; act?: string },
    conv: ConvSpec,
    opts: { bn?: BnSpec; act?: Activation } = {},
  ): string {
    let y = this.conv(paths.conv, x, conv);
    if (paths.bn !== undefined) y = this.bn(paths.bn, y, conv.cout, opts.bn);
    if (opts.act) {
      if (paths.act === undefined) throw new Error(`${paths.conv}: activation without a module path`);
      y = this.act(paths.act, opts.act, y);
    }
    return y;
  }

  maxPool(path: string, x: string, kernel: number, stride: number, pad = 0): string {
    return this.op(path, 'MaxPool', [x], { ceil_mode: 0, kernel_shape: [kernel, kernel], pads: [pad, pad, pad, pad], strides: [stride, stride] });
  }

  globalAvgPool(path: string, x: string): string {
    return this.op(path, 'GlobalAveragePool', [x]);
  }

  flatten(path: string, x: string): string {
    return this.op(path, 'Flatten', [x], { axis: 1 });
  }

  /** Linear layer as Gemm (weight [out, in], transB). */
  linear(path: string, x: string, fin: number, fout: number, init: WeightInit, output?: string): string {
    const dims = [fout, fin];
    const w = `${path}.weight`;
    const b = `${path}.bias`;
    const inputs = [x, this.param(w, dims, initWeight(init, dims, this.rng(w))), this.param(b, [fout], initBias(init, dims, this.rng(b)))];
    return this.op(path, 'Gemm', inputs, { alpha: f(1), beta: f(1), transB: 1 }, output);
  }

  /** Wraps the graph, declares `logits` [N, classes] as the output and records metadata. */
  finish(logits: string, classes: number, meta: { kind: string; norm: { mean: number[]; std: number[] }; dropout?: number }): Model {
    if (logits !== 'logits') throw new Error(`the last node must write 'logits', not '${logits}'`);
    this.graph.outputs.push({ name: 'logits', type: { kind: 'tensor', elemType: DataType.FLOAT, shape: ['N', classes] } });
    const model = makeModel(this.graph, 17);
    const pre: Preprocess = { size: [this.imageSize, this.imageSize], mean: meta.norm.mean, std: meta.norm.std };
    setMetadata(model, 'sff.preprocess', JSON.stringify(pre));
    setMetadata(model, 'sff.model', meta.kind);
    if (meta.dropout !== undefined) setMetadata(model, 'sff.dropout', String(meta.dropout));
    return model;
  }
}
