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
 * Splits samples 0..labels.length-1 into train/val, per class: each class contributes
 * round(n_c · valFraction) randomly chosen samples to val (at least one train sample is
 * kept per class). Deterministic in `seed`. Returned index lists are ascending.
 */
export function stratifiedSplit(
  labels: ArrayLike<number>, numClasses: number, valFraction: number, seed: number,
): { train: Int32Array; val: Int32Array } {
  if (!(valFraction >= 0 && valFraction < 1)) {
    throw new DataError(`valFraction must be in [0, 1), got ${valFraction}`);
  }
  const all = Int32Array.from({ length: labels.length }, (_, i) => i);
  const groups = byClass(all, labels, numClasses);
  const train: number[] = [];
  const val: number[] = [];
  groups.forEach((g, c) => {
    const rng = new Rng(seed, STREAM.split, c);
    rng.shuffle(g);
    let nv = Math.round(g.length * valFraction);
    if (nv >= g.length) nv = g.length - 1;
    for (let k = 0; k < g.length; k++) (k < nv ? val : train).push(g[k]!);
  });
  train.sort((a, b) => a - b);
  val.sort((a, b) => a - b);
  return { train: Int32Array.from(train), val: Int32Array.from(val) };
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
