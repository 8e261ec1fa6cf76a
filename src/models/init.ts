/**
 * Seeded, deterministic weight initialisation in PyTorch's conventions.
 *
 * Every tensor draws from its own stream, keyed by (seed, tensor name), so a tensor's values
 * depend only on the seed and its name — not on the order the graph was built in.
 */

import { Rng } from '../util/rng.js';
import { numElements } from '../ir/tensor.js';

/** 32-bit FNV-1a over a string, continued from `h`. */
function fnv1a(s: string, h = 0x811c9dc5): number {
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The project's generator on a stream of its own per (seed, tensor name). */
export class InitRng extends Rng {
  constructor(seed: number, stream: string) {
    if (!Number.isSafeInteger(seed)) throw new Error(`seed must be an integer, got ${seed}`);
    super(seed, fnv1a(stream));
  }
}

/**
 * How a weight (and its bias, if any) is initialised. fan_in/fan_out follow PyTorch's
 * `_calculate_fan_in_and_fan_out`: for a weight [out, in/groups, kh, kw],
 * fan_in = in/groups·kh·kw and fan_out = out·kh·kw.
 */
export type WeightInit =
  /** PyTorch's default for Conv2d/Linear: kaiming_uniform(a=√5) ⇒ U(±1/√fan_in); bias U(±1/√fan_in). */
  | 'torch-default'
  /** kaiming_normal_(mode='fan_out', nonlinearity='relu'): N(0, 2/fan_out); bias 0 (torchvision convs). */
  | 'kaiming-normal-fan-out'
  /** normal(0, 0.01); bias 0 (torchvision MobileNetV3 Linear layers). */
  | 'normal-0.01';

export function fans(dims: readonly number[]): { fanIn: number; fanOut: number } {
  if (dims.length < 2) throw new Error(`fan of a tensor needs rank ≥ 2, got [${dims}]`);
  let receptive = 1;
  for (let i = 2; i < dims.length; i++) receptive *= dims[i]!;
  return { fanIn: dims[1]! * receptive, fanOut: dims[0]! * receptive };
}

export function initWeight(init: WeightInit, dims: readonly number[], rng: InitRng): Float32Array {
  const n = numElements(dims);
  const out = new Float32Array(n);
  const { fanIn, fanOut } = fans(dims);
  switch (init) {
    case 'torch-default': {
      const bound = 1 / Math.sqrt(fanIn);
      for (let i = 0; i < n; i++) out[i] = rng.uniform(-bound, bound);
      break;
    }
    case 'kaiming-normal-fan-out': {
      const std = Math.sqrt(2 / fanOut);
      for (let i = 0; i < n; i++) out[i] = std * rng.normal();
      break;
    }
    case 'normal-0.01':
      for (let i = 0; i < n; i++) out[i] = 0.01 * rng.normal();
      break;
  }
  return out;
}

/** The bias matching a weight of shape `weightDims` under `init`. */
export function initBias(init: WeightInit, weightDims: readonly number[], rng: InitRng): Float32Array {
  const out = new Float32Array(weightDims[0]!);
  if (init === 'torch-default') {
    const bound = 1 / Math.sqrt(fans(weightDims).fanIn);
    for (let i = 0; i < out.length; i++) out[i] = rng.uniform(-bound, bound);
  }
  return out;
}
