/**
 * Tests on the real datasets in ../shared/data (or $SFF_SHARED/data). Skipped, with a
 * warning, when that directory is absent.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { batches, prepareData } from '../../src/data/index.js';
import { rmrf, sharedData, tempDir } from './helpers.js';

const cifar = path.join(sharedData, 'cifar10-train');
const imagenette = path.join(sharedData, 'imagenette-train-3000');
const hasShared = fs.existsSync(cifar) && fs.existsSync(imagenette);
if (!hasShared) console.warn(`${sharedData} absent: skipping the shared-data tests (set SFF_SHARED to the shared/ folder to run them)`);

const cache = hasShared ? tempDir('sff-cache-') : '';
afterAll(() => { if (cache) rmrf(cache); });

describe.skipIf(!hasShared)('shared data', () => {
  it('cifar10-train (200 per class) at 32×32: classes, stratified split, cache hit, batches', async () => {
    const opts = { path: cifar, imageSize: [32, 32] as [number, number], channels: 3, cacheDir: cache, limitPerClass: 200, seed: 0 };
    const d = await prepareData(opts);
    expect(d.classes).toEqual(['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck']);
    expect(d.skipped).toEqual([]);
    expect(d.train.count).toBe(1600);
    expect(d.val.count).toBe(400);
    const per = new Array(10).fill(0);
    for (const l of d.val.labels) per[l]++;
    expect(per).toEqual(new Array(10).fill(40));
    const d2 = await prepareData(opts);
    expect(d2.cacheHit).toBe(true);
    expect(Buffer.from(d2.train.store).equals(Buffer.from(d.train.store))).toBe(true);
    let n = 0;
    for await (const b of batches(d.train, { batchSize: 128, shuffle: true, seed: 0, epoch: 0, augment: true, ...d.preprocess })) {
      expect(b.x.length).toBe(b.n * 3 * 32 * 32);
      n += b.n;
    }
    expect(n).toBe(1600);
  }, 30_000);

  it('imagenette-train-3000 (30 per class) at 224×224 incl. grayscale JPEGs', async () => {
    const d = await prepareData({ path: imagenette, imageSize: [224, 224], channels: 3, cacheDir: cache, limitPerClass: 30 });
    expect(d.classes).toHaveLength(10);
    expect(d.classes[0]).toBe('n01440764');
    expect(d.train.count + d.val.count + d.skipped.length).toBe(300);
    expect(d.skipped).toEqual([]);
    expect(d.train.storedChannels).toBe(3);
    const it = batches(d.val, { batchSize: 64, shuffle: false, seed: 0, epoch: 0, ...d.preprocess });
    const b = (await it.next()).value!;
    expect(b.x.length).toBe(60 * 3 * 224 * 224);
    // Normalised ImageNet-style values stay in a sane range.
    let min = Infinity, max = -Infinity;
    for (const v of b.x) { if (v < min) min = v; if (v > max) max = v; }
    expect(min).toBeGreaterThanOrEqual(-2.2);
    expect(max).toBeLessThanOrEqual(2.7);
  }, 30_000);
});
