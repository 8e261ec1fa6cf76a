/**
 * Seeded, deterministic weight initialisation in PyTorch's conventions.
 *
 * Every tensor draws from its own stream, keyed by (seed, tensor name), so a tensor's values
 * depend only on the seed and its name — not on the order the graph was built in.
 */

/** 32-bit FNV-1a over a string, continued from `h`. */
function fnv1a(s: string, h = 0x811c9dc5): number {
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** sfc32 (Small Fast Chaotic, 128-bit state): a fast generator with good statistical quality. */
export class InitRng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private spare: number | undefined;

  constructor(seed: number, stream: string) {
    if (!Number.isSafeInteger(seed)) throw new Error(`seed must be an integer, got ${seed}`);
    const lo = seed >>> 0;
    const hi = Math.floor(seed / 4294967296) >>> 0;
    const h = fnv1a(stream);
    this.a = (lo ^ 0x9e3779b9) >>> 0;
    this.b = (hi ^ 0x243f6a88) >>> 0;
    this.c = h;
    this.d = 1;
    // Warm up so nearby seeds/streams decorrelate.
    for (let i = 0; i < 16; i++) this.nextU32();
  }

  nextU32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1) with 53 bits. */
  next(): number {
    return (this.nextU32() * 2097152 + (this.nextU32() >>> 11)) / 9007199254740992;
  }

  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Standard normal (Box–Muller, both values used). */
  normal(): number {
    if (this.spare !== undefined) {
      const s = this.spare;
      this.spare = undefined;
      return s;
    }
    let u = 0;
    while (u === 0) u = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    const th = 2 * Math.PI * this.next();
    this.spare = r * Math.sin(th);
    return r * Math.cos(th);
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
  const n = dims.reduce((a, b) => a * b, 1);
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
