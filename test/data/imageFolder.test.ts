import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataError, prepareData, type ImageSet } from '../../src/data/index.js';
import { rmrf, tempDir } from './helpers.js';

const solid = (w: number, h: number, channels: 1 | 3 | 4, value: number[]) => {
  const buf = Buffer.alloc(w * h * channels);
  for (let p = 0; p < w * h; p++) for (let c = 0; c < channels; c++) buf[p * channels + c] = value[c]!;
  return sharp(buf, { raw: { width: w, height: h, channels } });
};

/** Mean of each stored channel of image i. */
function meanRGB(set: ImageSet, i: number): number[] {
  const px = set.image(i);
  const c = set.storedChannels;
  const sums = new Array(c).fill(0);
  for (let p = 0; p < px.length; p++) sums[p % c] += px[p]!;
  return sums.map((s) => s / (px.length / c));
}

let root: string;
let cache: string;

beforeAll(async () => {
  root = tempDir();
  cache = tempDir('sff-cache-');
  const tree = path.join(root, 'tree');
  // Class "blue": RGB JPEGs (some non-square, to exercise resize + centre crop).
  fs.mkdirSync(path.join(tree, 'blue'), { recursive: true });
  for (let i = 0; i < 10; i++) {
    await solid(40 + i, 30, 3, [10, 20, 230]).jpeg({ quality: 95 }).toFile(path.join(tree, 'blue', `b${i}.jpg`));
  }
  // Class "gray": 1-channel PNGs and WebP.
  fs.mkdirSync(path.join(tree, 'gray'), { recursive: true });
  for (let i = 0; i < 8; i++) await solid(20, 20, 1, [128]).png().toFile(path.join(tree, 'gray', `g${i}.png`));
  for (let i = 0; i < 2; i++) await solid(20, 20, 3, [128, 128, 128]).webp({ lossless: true }).toFile(path.join(tree, 'gray', `w${i}.webp`));
  // Class "red": RGBA PNGs, one nested in a sub-folder, plus a corrupt "JPEG" and a text file.
  fs.mkdirSync(path.join(tree, 'red', 'nested'), { recursive: true });
  for (let i = 0; i < 9; i++) await solid(16, 16, 4, [250, 0, 0, 100]).png().toFile(path.join(tree, 'red', `r${i}.png`));
  await solid(16, 16, 4, [250, 0, 0, 255]).png().toFile(path.join(tree, 'red', 'nested', 'r9.png'));
  fs.writeFileSync(path.join(tree, 'red', 'broken.jpg'), Buffer.from('this is not a jpeg at all'));
  fs.writeFileSync(path.join(tree, 'red', 'notes.txt'), 'ignored');
});

afterAll(() => {
  rmrf(root);
  rmrf(cache);
});

describe('image folder', () => {
  it('decodes JPEG/PNG/WebP, grayscale and RGBA to RGB, skips a corrupt file, caches', async () => {
    const tree = path.join(root, 'tree');
    const progress: number[] = [];
    const d = await prepareData({
      path: tree, imageSize: [8, 8], channels: 3, cacheDir: cache, valFraction: 0.2, seed: 1,
      onProgress: (done, total) => progress.push(done / total),
    });
    expect(d.classes).toEqual(['blue', 'gray', 'red']);
    expect(d.skipped).toHaveLength(1);
    expect(d.skipped[0]!.path).toBe(path.join(tree, 'red', 'broken.jpg'));
    expect(d.skipped[0]!.reason.length).toBeGreaterThan(0);
    expect(d.train.count + d.val.count).toBe(30);
    expect(d.test).toBeUndefined();
    expect(d.cacheHit).toBe(false);
    expect(d.cacheFiles).toHaveLength(1);
    expect(progress.at(-1)).toBe(1);
    await d.cacheWritten;
    expect(fs.existsSync(d.cacheFiles[0]!)).toBe(true);
    expect(d.source).toContain('image folder');
    for (const set of [d.train, d.val]) {
      expect(set.storedChannels).toBe(3);
      expect(set.height).toBe(8);
      for (let i = 0; i < set.count; i++) {
        const m = meanRGB(set, i);
        const want = [[10, 20, 230], [128, 128, 128], [250, 0, 0]][set.labels[i]!]!;
        for (let c = 0; c < 3; c++) expect(Math.abs(m[c]! - want[c]!)).toBeLessThan(6);
      }
    }

    // Second run: read back from the cache, same pixels, same skipped list.
    const d2 = await prepareData({ path: tree, imageSize: [8, 8], channels: 3, cacheDir: cache, valFraction: 0.2, seed: 1 });
    expect(d2.cacheHit).toBe(true);
    expect(d2.skipped).toEqual(d.skipped);
    expect(Array.from(d2.train.labels)).toEqual(Array.from(d.train.labels));
    for (let i = 0; i < d.train.count; i++) expect(Buffer.from(d2.train.image(i)).equals(Buffer.from(d.train.image(i)))).toBe(true);

    // A different size is a different cache entry; noCache never reads/writes.
    const d3 = await prepareData({ path: tree, imageSize: [6, 6], channels: 3, cacheDir: cache });
    expect(d3.cacheHit).toBe(false);
    const d4 = await prepareData({ path: tree, imageSize: [8, 8], channels: 3, cacheDir: cache, noCache: true });
    expect(d4.cacheHit).toBe(false);
    expect(d4.cacheFiles).toEqual([]);
    // Touching a file invalidates the key.
    const f = path.join(tree, 'blue', 'b0.jpg');
    const t = new Date(Date.now() + 5000);
    fs.utimesSync(f, t, t);
    const d5 = await prepareData({ path: tree, imageSize: [8, 8], channels: 3, cacheDir: cache, valFraction: 0.2, seed: 1 });
    expect(d5.cacheHit).toBe(false);
    await d5.cacheWritten;
    expect(fs.readdirSync(cache).filter((n) => n.includes('.tmp-'))).toEqual([]);
  });

  it('converts to 1-channel luminance when the model wants 1 channel', async () => {
    const d = await prepareData({ path: path.join(root, 'tree'), imageSize: [8, 8], channels: 1, cacheDir: cache, normalize: 'none' });
    expect(d.train.channels).toBe(1);
    expect(d.train.storedChannels).toBe(3);
  });

  it('recognises the train/ + val/ layout and reports val as test', async () => {
    const r = path.join(root, 'split');
    for (const part of ['train', 'val']) {
      for (const cls of ['a', 'b']) {
        fs.mkdirSync(path.join(r, part, cls), { recursive: true });
        for (let i = 0; i < (part === 'train' ? 5 : 2); i++) {
          await solid(12, 12, 3, cls === 'a' ? [0, 0, 0] : [255, 255, 255]).png().toFile(path.join(r, part, cls, `${i}.png`));
        }
      }
    }
    const d = await prepareData({ path: r, imageSize: [4, 4], channels: 3, cacheDir: cache });
    expect(d.classes).toEqual(['a', 'b']);
    expect(d.train.count + d.val.count).toBe(10);
    expect(d.test?.count).toBe(4);
    expect(d.test?.role).toBe('test');
    expect(Array.from(d.test!.labels)).toEqual([0, 0, 1, 1]);
    expect(d.source).toContain('test 4');

    // The same tree as testPath (its val/ part) for a plain class-tree training set.
    const d2 = await prepareData({ path: path.join(r, 'train'), testPath: r, imageSize: [4, 4], channels: 3, cacheDir: cache });
    expect(d2.test?.count).toBe(4);
    // limitPerClass keeps the first N files of each class.
    const d3 = await prepareData({ path: r, imageSize: [4, 4], channels: 3, cacheDir: cache, limitPerClass: 3 });
    expect(d3.train.count + d3.val.count).toBe(6);
  });

  it('errors on an empty class folder, naming it', async () => {
    const r = path.join(root, 'empty');
    fs.mkdirSync(path.join(r, 'full'), { recursive: true });
    fs.mkdirSync(path.join(r, 'hollow'), { recursive: true });
    await solid(4, 4, 3, [1, 2, 3]).png().toFile(path.join(r, 'full', 'x.png'));
    const p = prepareData({ path: r, imageSize: [4, 4], channels: 3, cacheDir: cache });
    await expect(p).rejects.toThrow(DataError);
    await expect(p).rejects.toThrow(path.join(r, 'hollow'));
    await expect(p).rejects.toThrow(/empty/);
  });

  it('errors when classes differ from expectClasses or test classes are unknown', async () => {
    const tree = path.join(root, 'tree');
    const p = prepareData({ path: tree, imageSize: [4, 4], channels: 3, cacheDir: cache, expectClasses: ['blue', 'green', 'red'] });
    await expect(p).rejects.toThrow(DataError);
    await expect(p).rejects.toThrow(/expected classes/);
    const t = path.join(root, 'badtest');
    fs.mkdirSync(path.join(t, 'purple'), { recursive: true });
    await solid(4, 4, 3, [1, 2, 3]).png().toFile(path.join(t, 'purple', 'x.png'));
    const q = prepareData({ path: tree, testPath: t, imageSize: [4, 4], channels: 3, cacheDir: cache });
    await expect(q).rejects.toThrow(path.join(t, 'purple'));
    await expect(prepareData({ path: path.join(root, 'nope'), imageSize: [4, 4], channels: 3 })).rejects.toThrow(DataError);
  });

  it('decodes only what a small subset needs', async () => {
    const r = path.join(root, 'many');
    for (const cls of ['x', 'y']) {
      fs.mkdirSync(path.join(r, cls), { recursive: true });
      for (let i = 0; i < 50; i++) await solid(4, 4, 3, [i, i, i]).png().toFile(path.join(r, cls, `${i}.png`));
    }
    let total = 0;
    const d = await prepareData({
      path: r, imageSize: [4, 4], channels: 3, cacheDir: cache, subset: 10, onProgress: (_d, t) => { total = t; },
    });
    expect(d.train.count).toBe(10);
    expect(d.val.count).toBe(20);
    expect(total).toBe(30);
    expect(Array.from(d.train.labels).filter((l) => l === 0)).toHaveLength(5);
  });
});
