import { describe, expect, it } from 'vitest';
import { EarlyStopping, Plateau } from '../../src/train/schedule.js';
import { accuracy, combine, ensembleAccuracy, ensembleWeights, parseEnsemble } from '../../src/sff/ensemble.js';

describe('ReduceLROnPlateau', () => {
  it('cuts the rate by 10 after `patience` epochs without improvement, like PyTorch', () => {
    const p = Plateau.start(1e-3, 2);
    expect(p.observe(1.0)).toBe(1e-3);
    expect(p.observe(0.9)).toBe(1e-3);
    expect(p.observe(0.9)).toBe(1e-3); // bad 1
    expect(p.observe(0.95)).toBe(1e-3); // bad 2
    expect(p.observe(0.95)).toBeCloseTo(1e-4); // bad 3 > patience
    expect(p.state.badEpochs).toBe(0);
    // An improvement smaller than the relative threshold (1e-4) does not count.
    expect(p.observe(0.89995)).toBeCloseTo(1e-4);
    expect(p.state.badEpochs).toBe(1);
  });
});

describe('early stopping', () => {
  it('stops after `patience` epochs without a better accuracy and remembers the best epoch', () => {
    const s = new EarlyStopping(undefined, 2);
    expect(s.observe(0.5, 0)).toBe(false);
    expect(s.observe(0.6, 1)).toBe(false);
    expect(s.observe(0.6, 2)).toBe(false);
    expect(s.observe(0.55, 3)).toBe(true);
    expect(s.state.bestEpoch).toBe(1);
  });
});

describe('ensembles', () => {
  // Three blocks, two classes, four samples with labels [0, 1, 0, 1].
  const labels = [0, 1, 0, 1];
  const weak = Float32Array.from([1, 0, 1, 0, 1, 0, 1, 0]); // always class 0: 50%
  const good = Float32Array.from([2, 0, 0, 2, 2, 0, 2, 1]); // 4/4... sample 3 wrong → 75%
  const best = Float32Array.from([3, 0, 0, 3, 3, 0, 0, 3]); // 100%
  it('parses the rules and rejects nonsense', () => {
    expect(parseEnsemble('last:2')).toEqual({ kind: 'last', k: 2 });
    expect(() => parseEnsemble('last:0')).toThrow(/last:K/);
    expect(() => parseEnsemble('mean')).toThrow(/all, last:K/);
  });
  it('computes all / last:K / weighted', () => {
    const g = [weak, good, best];
    expect(ensembleWeights({ kind: 'all' }, g, labels, 2)).toEqual([1, 1, 1]);
    expect(ensembleWeights({ kind: 'last', k: 1 }, g, labels, 2)).toEqual([0, 0, 1]);
    const w = ensembleWeights({ kind: 'weighted' }, g, labels, 2);
    expect(accuracy(combine(g, w), labels, 2)).toBe(1);
    expect(w[0]).toBe(0);
  });

  it('scores the fitted rule by cross-validation, never above its in-sample accuracy', () => {
    const g = [weak, good, best];
    const inSample = accuracy(combine(g, ensembleWeights({ kind: 'weighted' }, g, labels, 2)), labels, 2);
    const cv = ensembleAccuracy({ kind: 'weighted' }, g, labels, 2);
    expect(cv).toBeLessThanOrEqual(inSample);
    expect(cv).toBeGreaterThanOrEqual(0.5);
    // Unfitted rules are scored directly.
    expect(ensembleAccuracy({ kind: 'last', k: 1 }, g, labels, 2)).toBe(1);
  });
});

describe('step-wise learning-rate shapes', () => {
  it('warm-up rises linearly to the base rate, then plateau holds it and cosine decays it to 0', async () => {
    const { lrFactor } = await import('../../src/train/schedule.js');
    expect([0, 1, 2, 3].map((s) => lrFactor('plateau', s, 100, 4))).toEqual([0.25, 0.5, 0.75, 1]);
    expect(lrFactor('plateau', 50, 100, 4)).toBe(1);
    expect(lrFactor('cosine', 0, 100, 0)).toBe(1);
    expect(lrFactor('cosine', 50, 100, 0)).toBeCloseTo(0.5, 12);
    expect(lrFactor('cosine', 99, 100, 0)).toBeCloseTo(0.5 * (1 + Math.cos((Math.PI * 99) / 100)), 12);
    expect(lrFactor('cosine', 10, 110, 10)).toBe(1);
    expect(lrFactor('cosine', 60, 110, 10)).toBeCloseTo(0.5, 12);
  });
});
