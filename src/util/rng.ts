/**
 * Small, serialisable pseudo-random number generators.
 *
 * `Rng` is xoshiro128** (32-bit state words, period 2^128 − 1) seeded through
 * splitmix32, so any (seed, stream…) tuple gives an independent-looking stream.
 * Its whole state is four uint32 words: `getState()` / `setState()` round-trip it.
 */

/** splitmix32 step: returns [nextState, output]. */
function splitmix32(state: number): [number, number] {
  state = (state + 0x9e3779b9) | 0;
  let z = state;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  z ^= z >>> 16;
  return [state, z >>> 0];
}

/** Mixes a list of integers (e.g. seed, epoch, stream id) into one 32-bit value. */
export function mixSeed(...parts: number[]): number {
  let h = 0x243f6a88;
  for (const p of parts) {
    // Fold in both 32-bit halves so large seeds (< 2^53) are not truncated.
    const lo = p >>> 0;
    const hi = Math.floor(p / 4294967296) >>> 0;
    for (const w of [lo, hi]) {
      let s: number;
      [s, h] = splitmix32((h ^ w) >>> 0);
      h = (h ^ s) >>> 0;
    }
  }
  return h >>> 0;
}

const rotl = (x: number, k: number): number => (x << k) | (x >>> (32 - k));

export class Rng {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;

  /** Seeds from one or more integers (seed, epoch, stream id, …). */
  constructor(...seedParts: number[]) {
    let st = mixSeed(...(seedParts.length ? seedParts : [0]));
    let o: number;
    [st, o] = splitmix32(st); this.s0 = o | 0;
    [st, o] = splitmix32(st); this.s1 = o | 0;
    [st, o] = splitmix32(st); this.s2 = o | 0;
    [st, o] = splitmix32(st); this.s3 = o | 0;
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** Next uint32. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9);
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result >>> 0;
  }

  /** Uniform float in [0, 1) with 32 bits of randomness. */
  next(): number {
    return this.nextU32() / 4294967296;
  }

  /** Uniform integer in [0, n) (unbiased, rejection sampling); n ≤ 2^32. */
  int(n: number): number {
    if (n <= 1) return 0;
    const limit = 4294967296 - (4294967296 % n);
    for (;;) {
      const r = this.nextU32();
      if (r < limit) return r % n;
    }
  }

  /** Uniform float in [a, b). */
  uniform(a: number, b: number): number {
    return a + (b - a) * this.next();
  }

  /** Standard normal (Box–Muller, one value per call). */
  normal(): number {
    let u = 0;
    while (u === 0) u = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }

  /** In-place Fisher–Yates shuffle. */
  shuffle<T extends { length: number; [i: number]: number } | unknown[]>(a: T): T {
    const arr = a as unknown as { length: number; [i: number]: unknown };
    for (let i = arr.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = arr[i];
      arr[i] = arr[j];
      arr[j] = tmp;
    }
    return a;
  }

  getState(): [number, number, number, number] {
    return [this.s0 >>> 0, this.s1 >>> 0, this.s2 >>> 0, this.s3 >>> 0];
  }

  setState(state: readonly number[]): void {
    if (state.length !== 4 || state.some((v) => !Number.isInteger(v) || v < 0 || v > 0xffffffff)) {
      throw new Error(`Rng.setState: expected 4 uint32 words, got ${JSON.stringify(state)}`);
    }
    this.s0 = state[0]! | 0;
    this.s1 = state[1]! | 0;
    this.s2 = state[2]! | 0;
    this.s3 = state[3]! | 0;
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }
}

/** Stream ids so that different uses of one seed never share a random stream. */
export const STREAM = {
  order: 1,
  split: 2,
  subset: 3,
  augment: 4,
  synthetic: 5,
  syntheticTest: 6,
} as const;

/**
 * The permutation of 0..n-1 used for epoch `epoch` under `seed`. A pure function of its
 * arguments, so a resumed run reproduces the order of any epoch without saved RNG state.
 */
export function epochOrder(seed: number, epoch: number, n: number): Int32Array {
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  new Rng(seed, epoch, STREAM.order).shuffle(order);
  return order;
}
