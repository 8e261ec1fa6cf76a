/**
 * What each block is trained to produce: class scores [B,J] from the block's
 * output, scored by softmax cross-entropy. SFF uses the goodness of
 * an auxiliary conv head; CwC-mod (the channel-wise competitive baseline) the goodness of channel groups; the
 * BP baseline the network's own classifier; a linear probe reads a detached map.
 */
import type { GraphBuilder } from '../ir/builder.js';
import { Rng } from '../util/rng.js';
import { appendHead, headParams, type HeadParam, type HeadSpec } from './head.js';

export interface Objective {
  kind: 'sff' | 'cwc' | 'classifier' | 'linear';
  /** Learned parameters the objective adds (trained with the block). */
  params: HeadParam[];
  /**
   * Appends the scoring nodes after block output `y`; `param(name)` gives the
   * value holding one of `params`. Returns what the next block receives and the scores.
   */
  append(b: GraphBuilder, y: string, param: (name: string) => string): { next: string; scores: string };
}

export function sffObjective(spec: HeadSpec, prefix: string): Objective {
  return {
    kind: 'sff',
    params: headParams(spec, prefix),
    append: (b, y, param) => {
      const out = appendHead(b, y, spec, prefix, param);
      return { next: out.next, scores: out.goodness };
    },
  };
}

/** Channels per class group for CwC-mod; channels past groups·J are left out. */
export function cwcGroupSize(channels: number, classes: number): number {
  const size = Math.floor(channels / classes);
  if (size === 0)
    throw new Error(
      `CwC-mod needs at least one channel per class: this block has ${channels} channels for ${classes} classes ` +
        '(the paper reports chance accuracy in this case, 1% on CIFAR-100). Use --method sff.',
    );
  return size;
}

/** g[n,j] = mean of squares over channel group j (CwC-mod's goodness). */
export function cwcObjective(channels: number, classes: number): Objective {
  const size = cwcGroupSize(channels, classes);
  return {
    kind: 'cwc',
    params: [],
    append: (b, y) => {
      const used = size * classes === channels ? y : b.op('Slice', [y, b.constInt64([0]), b.constInt64([size * classes]), b.constInt64([1])], {}, 'cwc/Slice');
      const groups = b.op('Reshape', [used, b.constInt64([0, classes, -1])], {}, 'cwc/groups');
      const sq = b.op('Mul', [groups, groups], {}, 'cwc/square');
      const scores = b.op('ReduceMean', [sq], { axes: [2], keepdims: 0 }, 'cwc/goodness');
      return { next: y, scores };
    },
  };
}

/** The block output already is the class scores (BP through the network's own classifier). */
export function classifierObjective(): Objective {
  return { kind: 'classifier', params: [], append: (_b, y) => ({ next: y, scores: y }) };
}

/** A linear classifier on the flattened (detached) input: CwC-mod's "Head Acc". */
export function linearProbe(features: number, classes: number, seed: number, prefix: string): Objective {
  const rng = new Rng(seed);
  const bound = 1 / Math.sqrt(features);
  const w = `${prefix}.weight`;
  const bias = `${prefix}.bias`;
  return {
    kind: 'linear',
    params: [
      { name: w, dims: [classes, features], init: Float32Array.from({ length: classes * features }, () => rng.uniform(-bound, bound)) },
      { name: bias, dims: [classes], init: Float32Array.from({ length: classes }, () => rng.uniform(-bound, bound)) },
    ],
    append: (b, y, param) => {
      const flat = b.op('Flatten', [y], { axis: 1 }, 'probe/Flatten');
      return { next: y, scores: b.op('Gemm', [flat, param(w), param(bias)], { transB: 1 }, 'probe/Gemm') };
    },
  };
}
