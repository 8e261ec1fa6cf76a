import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataError, prepareData } from '../../src/data/index.js';
import { rmrf, tempDir } from './helpers.js';

/** Pixel value of record r, channel c, position p: distinct per record/channel/position. */
const px = (r: number, c: number, p: number) => (r * 7 + c * 50 + p) & 255;

function cifarRecords(n: number, labelBytes: (r: number) => number[]): Buffer {
  const lb = labelBytes(0).length;
  const rec = lb + 3072;
  const buf = Buffer.alloc(n * rec);
  for (let r = 0; r < n; r++) {
    labelBytes(r).forEach((v, k) => { buf[r * rec + k] = v; });
    for (let c = 0; c < 3; c++) for (let p = 0; p < 1024; p++) buf[r * rec + lb + c * 1024 + p] = px(r, c, p);
  }
  return buf;
}

let root: string;
let cache: string;
beforeAll(() => {
  root = tempDir();
  cache = tempDir('sff-cache-');
  const c10 = path.join(root, 'c10');
  fs.mkdirSync(c10);
  fs.writeFileSync(path.join(c10, 'data_batch_1.bin'), cifarRecords(50, (r) => [r % 10]));
  fs.writeFileSync(path.join(c10, 'data_batch_2.bin'), cifarRecords(50, (r) => [(r + 5) % 10]));
  fs.writeFileSync(path.join(c10, 'test_batch.bin'), cifarRecords(20, (r) => [r % 10]));
  fs.writeFileSync(path.join(c10, 'batches.meta.txt'), ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck', '', ''].join('\n'));
  const c100 = path.join(root, 'c100');
  fs.mkdirSync(c100);
  fs.writeFileSync(path.join(c100, 'train.bin'), cifarRecords(40, (r) => [r % 4, r % 8]));
  fs.writeFileSync(path.join(c100, 'fine_label_names.txt'), Array.from({ length: 8 }, (_, i) => `fine${i}`).join('\n'));
  fs.writeFileSync(path.join(c100, 'coarse_label_names.txt'), Array.from({ length: 4 }, (_, i) => `coarse${i}`).join('\n'));
});
afterAll(() => { rmrf(root); rmrf(cache); });

describe('CIFAR binary', () => {
  it('reads CIFAR-10 batches and the test batch with planar → HWC layout', async () => {
    const d = await prepareData({ path: path.join(root, 'c10'), imageSize: [32, 32], channels: 3, cacheDir: cache });
    expect(d.classes[0]).toBe('airplane');
    expect(d.classes).toHaveLength(10);
    expect(d.train.count + d.val.count).toBe(100);
    expect(d.val.count).toBe(20);
    expect(d.test?.count).toBe(20);
    expect(d.cacheHit).toBe(false); // native size: nothing to decode or cache
    // Record 3 of data_batch_1 is stored as row 3.
    const set = d.test!;
    const img = set.image(3);
    for (const p of [0, 1, 31, 32, 500, 1023]) for (let c = 0; c < 3; c++) expect(img[p * 3 + c]).toBe(px(3, c, p));
    expect(set.labels[3]).toBe(3);
    expect(d.source).toContain('CIFAR-10');
  });

  it('reads a single CIFAR-10 file and resizes through the cache', async () => {
    const f = path.join(root, 'c10', 'data_batch_2.bin');
    const d = await prepareData({ path: f, imageSize: [40, 40], channels: 3, cacheDir: cache, valFraction: 0.1 });
    expect(d.train.count + d.val.count).toBe(50);
    expect(d.train.height).toBe(40);
    expect(d.test).toBeUndefined();
    expect(d.cacheHit).toBe(false);
    const d2 = await prepareData({ path: f, imageSize: [40, 40], channels: 3, cacheDir: cache, valFraction: 0.1 });
    expect(d2.cacheHit).toBe(true);
  });

  it('reads CIFAR-100 fine labels by default and coarse on request', async () => {
    const dir = path.join(root, 'c100');
    const fine = await prepareData({ path: dir, imageSize: [32, 32], channels: 3, valFraction: 0 });
    expect(fine.classes).toEqual(Array.from({ length: 8 }, (_, i) => `fine${i}`));
    expect(Array.from(fine.train.labels).slice(0, 9)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 0]);
    const coarse = await prepareData({ path: dir, imageSize: [32, 32], channels: 3, valFraction: 0, cifarLabels: 'coarse' });
    expect(coarse.classes).toEqual(['coarse0', 'coarse1', 'coarse2', 'coarse3']);
    expect(Array.from(coarse.train.labels).slice(0, 6)).toEqual([0, 1, 2, 3, 0, 1]);
    expect(coarse.source).toContain('coarse');
    expect(Array.from(fine.train.image(5).subarray(0, 6))).toEqual([px(5, 0, 0), px(5, 1, 0), px(5, 2, 0), px(5, 0, 1), px(5, 1, 1), px(5, 2, 1)]);
  });

  it('rejects a label out of range and a truncated file, naming the file', async () => {
    const bad = path.join(root, 'bad');
    fs.mkdirSync(bad);
    fs.writeFileSync(path.join(bad, 'data_batch_1.bin'), cifarRecords(5, (r) => [r === 3 ? 12 : 0]));
    const p = prepareData({ path: bad, imageSize: [32, 32], channels: 3 });
    await expect(p).rejects.toThrow(DataError);
    await expect(p).rejects.toThrow(/data_batch_1\.bin: record 3 has label 12/);
    const trunc = path.join(root, 'trunc');
    fs.mkdirSync(trunc);
    fs.writeFileSync(path.join(trunc, 'data_batch_1.bin'), cifarRecords(2, () => [0]).subarray(0, 5000));
    await expect(prepareData({ path: trunc, imageSize: [32, 32], channels: 3 })).rejects.toThrow(/data_batch_1\.bin: size 5000/);
  });
});
