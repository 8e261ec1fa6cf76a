/** Seeded, stratified train/validation split and stratified subsets. */
import { DataError } from './errors.js';
import { Rng, STREAM } from '../util/rng.js';

function byClass(indices: ArrayLike<number>, labels: ArrayLike<number>, numClasses: number): number[][] {
  const groups: number[][] = Array.from({ length: numClasses }, () => []);
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k]!;
    const l = labels[i]!;
    if (l < 0 || l >= numClasses) throw new DataError(`label ${l} of sample ${i} is outside 0..${numClasses - 1}`);
    groups[l]!.push(i);
  }
  return groups;
}

/**
 * Splits samples 0..labels.length-1 into train/val(/test), per class: each class contributes
 * round(n_c · valFraction) randomly chosen samples to val, then round(n_c · testFraction) to
 * test (at least one train sample is kept per class). Deterministic in `seed`; with
 * testFraction 0 the train/val split is the same as before test splits existed.
 * Returned index lists are ascending.
 */
export function stratifiedSplit(
  labels: ArrayLike<number>, numClasses: number, valFraction: number, seed: number, testFraction = 0,
): { train: Int32Array; val: Int32Array; test: Int32Array } {
  if (!(valFraction >= 0 && valFraction < 1)) {
    throw new DataError(`valFraction must be in [0, 1), got ${valFraction}`);
  }
  if (!(testFraction >= 0 && valFraction + testFraction < 1)) {
    throw new DataError(`testFraction must be ≥ 0 and leave a training share (val ${valFraction} + test ${testFraction} < 1), got ${testFraction}`);
  }
  const all = Int32Array.from({ length: labels.length }, (_, i) => i);
  const groups = byClass(all, labels, numClasses);
  const train: number[] = [];
  const val: number[] = [];
  const test: number[] = [];
  groups.forEach((g, c) => {
    const rng = new Rng(seed, STREAM.split, c);
    rng.shuffle(g);
    let nv = Math.round(g.length * valFraction);
    if (nv >= g.length) nv = g.length - 1;
    let nt = Math.round(g.length * testFraction);
    if (nv + nt >= g.length) nt = Math.max(0, g.length - 1 - nv);
    for (let k = 0; k < g.length; k++) (k < nv ? val : k < nv + nt ? test : train).push(g[k]!);
  });
  const sorted = (a: number[]) => Int32Array.from(a.sort((x, y) => x - y));
  return { train: sorted(train), val: sorted(val), test: sorted(test) };
}

/**
 * The cut a run made of its training data (data as `resolveInput` gives it), recorded in the
 * export's metadata so `eval` on the same data scores the same validation or test images.
 */
export interface SplitRecord {
  data: string;
  seed: number;
  valFraction: number;
  testFraction: number;
}

/** Shares as percentages, e.g. "80/10/10" (rounded to 0.1). */
export function formatShares(r: Pick<SplitRecord, 'valFraction' | 'testFraction'>): string {
  const pct = (f: number) => String(Math.round(f * 1000) / 10);
  return [1 - r.valFraction - r.testFraction, r.valFraction, ...(r.testFraction > 0 ? [r.testFraction] : [])].map(pct).join('/');
}

/**
 * Parses a `--split` value "train/val/test" in percent or fractions (e.g. "70/15/15", or
 * "80/20" for no test part) into the validation and test fractions of the whole data set.
 */
export function parseSplit(s: string): { valFraction: number; testFraction: number } {
  const parts = s.split('/').map((p) => Number(p.trim()));
  if ((parts.length !== 2 && parts.length !== 3) || parts.some((p) => !Number.isFinite(p) || p < 0))
    throw new DataError(`--split '${s}' is not understood: give train/val/test shares, e.g. 70/15/15 (or train/val, e.g. 80/20)`);
  const total = parts.reduce((a, b) => a + b, 0);
  const [train, val, test = 0] = parts as [number, number, number?];
  if (!(train > 0) || !(total > 0)) throw new DataError(`--split '${s}': the training share must be positive`);
  return { valFraction: val / total, testFraction: test / total };
}

/**
 * Picks `n` of `indices` at random, allocating to classes in proportion to their counts
 * (largest remainder), so every class present keeps about its share. Ascending output.
 */
export function stratifiedSubset(
  indices: ArrayLike<number>, labels: ArrayLike<number>, numClasses: number, n: number, seed: number,
): Int32Array {
  if (!Number.isInteger(n) || n <= 0) throw new DataError(`subset must be a positive integer, got ${n}`);
  if (n >= indices.length) return Int32Array.from(indices as ArrayLike<number>);
  const groups = byClass(indices, labels, numClasses);
  const total = indices.length;
  const quota = groups.map((g) => (g.length * n) / total);
  const take = quota.map(Math.floor);
  let left = n - take.reduce((a, b) => a + b, 0);
  const order = quota.map((q, c) => [q - Math.floor(q), c] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (const [, c] of order) {
    if (left <= 0) break;
    if (take[c]! < groups[c]!.length) { take[c]!++; left--; }
  }
  const out: number[] = [];
  groups.forEach((g, c) => {
    new Rng(seed, STREAM.subset, c).shuffle(g);
    for (let k = 0; k < take[c]!; k++) out.push(g[k]!);
  });
  out.sort((a, b) => a - b);
  return Int32Array.from(out);
}
