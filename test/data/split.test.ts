import { describe, expect, it } from 'vitest';
import { epochOrder, prepareData, Rng } from '../../src/data/index.js';
import { parseSplit, stratifiedSplit, stratifiedSubset } from '../../src/data/split.js';

const labels = Int32Array.from({ length: 1000 }, (_, i) => (i < 500 ? 0 : i < 800 ? 1 : i < 950 ? 2 : 3));

describe('split', () => {
  it('is stratified 80/20 per class, disjoint and complete', () => {
    const { train, val } = stratifiedSplit(labels, 4, 0.2, 0);
    expect(train.length + val.length).toBe(1000);
    const seen = new Set([...train, ...val]);
    expect(seen.size).toBe(1000);
    const count = (idx: Int32Array, c: number) => Array.from(idx).filter((i) => labels[i] === c).length;
    expect([0, 1, 2, 3].map((c) => count(val, c))).toEqual([100, 60, 30, 10]);
  });

  it('holds out a stratified test part, disjoint from train and val; val is unchanged by it', () => {
    const three = stratifiedSplit(labels, 4, 0.15, 0, 0.15);
    const two = stratifiedSplit(labels, 4, 0.15, 0);
    expect(Array.from(three.val)).toEqual(Array.from(two.val));
    expect(three.train.length + three.val.length + three.test.length).toBe(1000);
    expect(new Set([...three.train, ...three.val, ...three.test]).size).toBe(1000);
    const count = (idx: Int32Array, c: number) => Array.from(idx).filter((i) => labels[i] === c).length;
    expect([0, 1, 2, 3].map((c) => count(three.test, c))).toEqual([75, 45, 23, 8]);
    expect(two.test.length).toBe(0);
    expect(() => stratifiedSplit(labels, 4, 0.5, 0, 0.5)).toThrow(/leave a training share/);
  });

  it('parses --split shares in percent or fractions', () => {
    expect(parseSplit('70/15/15')).toEqual({ valFraction: 0.15, testFraction: 0.15 });
    expect(parseSplit('0.8/0.2')).toEqual({ valFraction: 0.2, testFraction: 0 });
    expect(() => parseSplit('70-15-15')).toThrow(/--split '70-15-15'/);
    expect(() => parseSplit('0/50/50')).toThrow(/training share/);
  });

  it('is deterministic in the seed and differs across seeds', () => {
    const a = stratifiedSplit(labels, 4, 0.2, 7);
    const b = stratifiedSplit(labels, 4, 0.2, 7);
    const c = stratifiedSplit(labels, 4, 0.2, 8);
    expect(Array.from(a.val)).toEqual(Array.from(b.val));
    expect(Array.from(a.val)).not.toEqual(Array.from(c.val));
  });

  it('subset keeps class proportions and is seeded', () => {
    const { train } = stratifiedSplit(labels, 4, 0.2, 0);
    const s = stratifiedSubset(train, labels, 4, 100, 3);
    expect(s.length).toBe(100);
    const per = [0, 0, 0, 0];
    for (const i of s) per[labels[i]!]!++;
    expect(per).toEqual([50, 30, 15, 5]);
    expect(Array.from(stratifiedSubset(train, labels, 4, 100, 3))).toEqual(Array.from(s));
    const trainSet = new Set(train);
    expect(Array.from(s).every((i) => trainSet.has(i))).toBe(true);
    expect(stratifiedSubset(train, labels, 4, 5000, 3).length).toBe(train.length);
  });

  it('prepareData subset and val do not overlap; same seed → same split', async () => {
    const opts = { path: 'builtin:shapes', imageSize: [16, 16] as [number, number], channels: 3, subset: 300, seed: 2 };
    const a = await prepareData(opts);
    const b = await prepareData(opts);
    expect(a.train.count).toBe(300);
    expect(a.val.count).toBe(1000);
    expect(Array.from(a.train.rows)).toEqual(Array.from(b.train.rows));
    const valRows = new Set(a.val.rows);
    expect(Array.from(a.train.rows).some((r) => valRows.has(r))).toBe(false);
    const per = new Array(10).fill(0);
    for (const l of a.train.labels) per[l]++;
    expect(per).toEqual(new Array(10).fill(30));
  });
});

describe('rng', () => {
  it('epochOrder is a reproducible permutation that changes with epoch and seed', () => {
    const a = epochOrder(0, 0, 1000);
    expect(Array.from(a).sort((x, y) => x - y)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(Array.from(epochOrder(0, 0, 1000))).toEqual(Array.from(a));
    expect(Array.from(epochOrder(0, 1, 1000))).not.toEqual(Array.from(a));
    expect(Array.from(epochOrder(1, 0, 1000))).not.toEqual(Array.from(a));
    expect(epochOrder(5, 3, 0).length).toBe(0);
  });

  it('Rng state round-trips and ints are in range and roughly uniform', () => {
    const r = new Rng(42);
    for (let i = 0; i < 10; i++) r.nextU32();
    const st = r.getState();
    const seq = Array.from({ length: 5 }, () => r.nextU32());
    const r2 = new Rng(0);
    r2.setState(JSON.parse(JSON.stringify(st)));
    expect(Array.from({ length: 5 }, () => r2.nextU32())).toEqual(seq);
    const hist = new Array(7).fill(0);
    for (let i = 0; i < 70000; i++) hist[r.int(7)]++;
    for (const h of hist) expect(Math.abs(h - 10000)).toBeLessThan(500);
    expect(() => r.setState([1, 2, 3])).toThrow();
  });
});
