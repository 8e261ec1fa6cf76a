import { describe, expect, it } from 'vitest';
import { SHAPE_CLASSES, prepareData } from '../../src/data/index.js';

describe('builtin:shapes', () => {
  // Speed is measured by the data benchmark (npm run bench), not asserted here.
  it('renders 5,000 + 1,000 balanced 32×32 images deterministically', async () => {
    const a = await prepareData({ path: 'builtin:shapes', imageSize: [32, 32], channels: 3, seed: 0 });
    expect(a.classes).toEqual(SHAPE_CLASSES);
    expect(a.classes).toHaveLength(10);
    expect(a.train.count).toBe(4000);
    expect(a.val.count).toBe(1000);
    expect(a.test?.count).toBe(1000);
    const per = new Array(10).fill(0);
    for (const l of a.val.labels) per[l]++;
    expect(per).toEqual(new Array(10).fill(100));
    const b = await prepareData({ path: 'builtin:shapes', imageSize: [32, 32], channels: 3, seed: 0 });
    expect(Buffer.from(b.train.store).equals(Buffer.from(a.train.store))).toBe(true);
    const c = await prepareData({ path: 'builtin:shapes', imageSize: [32, 32], channels: 3, seed: 1 });
    expect(Buffer.from(c.train.store).equals(Buffer.from(a.train.store))).toBe(false);
    // Test images differ from training images.
    expect(Buffer.from(a.test!.image(0)).equals(Buffer.from(a.train.image(0)))).toBe(false);
  }, 30_000);

  it('is not trivially separable by mean colour: per-class mean brightness is similar', async () => {
    const d = await prepareData({ path: 'builtin:shapes', imageSize: [32, 32], channels: 3, seed: 0 });
    const sums = new Array(10).fill(0), counts = new Array(10).fill(0);
    for (let i = 0; i < d.train.count; i++) {
      const px = d.train.image(i);
      let s = 0;
      for (let k = 0; k < px.length; k++) s += px[k]!;
      sums[d.train.labels[i]!] += s / px.length;
      counts[d.train.labels[i]!]++;
    }
    const means = sums.map((s, c) => s / counts[c]);
    expect(Math.max(...means) - Math.min(...means)).toBeLessThan(20);
  });

  it('renders at other sizes directly', async () => {
    const d = await prepareData({ path: 'builtin:shapes', imageSize: [48, 40], channels: 3, subset: 50 });
    expect(d.train.height).toBe(48);
    expect(d.train.width).toBe(40);
    expect(d.cacheHit).toBe(false);
  });
});
