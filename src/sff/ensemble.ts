/**
 * Prediction from per-block goodness (the paper's "layers" prediction): the mean of the goodness
 * matrices of all blocks, of the last K, or a weighted mean with weights chosen
 * on the validation split.
 */

export type EnsembleSpec = { kind: 'all' } | { kind: 'last'; k: number } | { kind: 'weighted' };

export function parseEnsemble(s: string): EnsembleSpec {
  if (s === 'all' || s === 'weighted') return { kind: s };
  const m = /^last:(\d+)$/.exec(s);
  if (m && Number(m[1]) > 0) return { kind: 'last', k: Number(m[1]) };
  throw new Error(`--ensemble '${s}' is not understood: use all, last:K (K ≥ 1) or weighted`);
}

export function formatEnsemble(e: EnsembleSpec): string {
  return e.kind === 'last' ? `last:${e.k}` : e.kind;
}

/** argmax per row of a [n, J] matrix. */
export function argmaxRows(scores: Float32Array, n: number, j: number, out = new Int32Array(n)): Int32Array {
  for (let r = 0; r < n; r++) {
    let best = 0;
    let bv = -Infinity;
    for (let c = 0; c < j; c++) {
      const v = scores[r * j + c]!;
      if (v > bv) {
        bv = v;
        best = c;
      }
    }
    out[r] = best;
  }
  return out;
}

export function accuracy(scores: Float32Array, labels: ArrayLike<number>, j: number): number {
  const n = labels.length;
  if (n === 0) return 0;
  const pred = argmaxRows(scores, n, j);
  let ok = 0;
  for (let i = 0; i < n; i++) if (pred[i] === labels[i]) ok++;
  return ok / n;
}

/** Weighted mean of per-block goodness matrices. */
export function combine(goodness: Float32Array[], weights: number[]): Float32Array {
  const out = new Float32Array(goodness[0]!.length);
  const total = weights.reduce((a, b) => a + b, 0) || 1;
  goodness.forEach((g, k) => {
    const w = weights[k]! / total;
    if (w === 0) return;
    for (let i = 0; i < out.length; i++) out[i]! += w * g[i]!;
  });
  return out;
}

/**
 * Block weights for a spec. For 'weighted', a greedy search on validation data:
 * start from the best single block and add weight (in steps of 1) to whichever
 * block most improves validation accuracy, until nothing improves (few, integer
 * weights so the choice does not overfit the split).
 */
export function ensembleWeights(spec: EnsembleSpec, goodness: Float32Array[], labels: ArrayLike<number>, j: number): number[] {
  const K = goodness.length;
  if (spec.kind === 'all') return new Array(K).fill(1);
  if (spec.kind === 'last') return goodness.map((_, k) => (k >= K - spec.k ? 1 : 0));
  const accOf = (w: number[]) => accuracy(combine(goodness, w), labels, j);
  const w = new Array(K).fill(0);
  let best = -1;
  let bestK = K - 1;
  goodness.forEach((g, k) => {
    const a = accuracy(g, labels, j);
    if (a > best || (a === best && k > bestK)) {
      best = a;
      bestK = k;
    }
  });
  w[bestK] = 1;
  for (let round = 0; round < 3 * K; round++) {
    let gain = 0;
    let pick = -1;
    for (let k = 0; k < K; k++) {
      w[k]++;
      const a = accOf(w);
      w[k]--;
      if (a > best + gain + 1e-12) {
        gain = a - best;
        pick = k;
      }
    }
    if (pick < 0) break;
    w[pick]++;
    best += gain;
  }
  return w;
}

function rows(g: Float32Array, idx: number[], j: number): Float32Array {
  const out = new Float32Array(idx.length * j);
  idx.forEach((i, r) => out.set(g.subarray(i * j, (i + 1) * j), r * j));
  return out;
}

/**
 * Validation accuracy of a rule, honest for rules fitted on the validation split:
 * 'weighted' is scored by 2-fold cross-validation (weights chosen on the even samples
 * score the odd ones and vice versa), so its number is not inflated by the choice.
 */
export function ensembleAccuracy(spec: EnsembleSpec, goodness: Float32Array[], labels: ArrayLike<number>, j: number): number {
  if (spec.kind !== 'weighted') return accuracy(combine(goodness, ensembleWeights(spec, goodness, labels, j)), labels, j);
  const n = labels.length;
  const folds = [0, 1].map((f) => Array.from({ length: n }, (_, i) => i).filter((i) => i % 2 === f));
  let correct = 0;
  for (const [fit, score] of [folds, [folds[1]!, folds[0]!]] as [number[], number[]][]) {
    if (!fit.length || !score.length) continue;
    const w = ensembleWeights(spec, goodness.map((g) => rows(g, fit, j)), fit.map((i) => labels[i]!), j);
    correct += accuracy(combine(goodness.map((g) => rows(g, score, j)), w), score.map((i) => labels[i]!), j) * score.length;
  }
  return n ? correct / n : 0;
}

/**
 * The rules reported beside the configured one for K layer blocks: the paper's plain mean,
 * the validation-weighted mean, the last four blocks and the last block alone.
 */
export function reportedRules(K: number, configured: string): string[] {
  return [...new Set(['all', 'weighted', configured, ...(K > 4 ? ['last:4'] : []), ...(K > 1 ? ['last:1'] : [])])];
}
