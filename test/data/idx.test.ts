import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataError, FASHION_MNIST_CLASSES, batches, prepareData } from '../../src/data/index.js';
import { idx, rmrf, tempDir } from './helpers.js';

const N = 60, TN = 20;
const imgs = (n: number) => Uint8Array.from({ length: n * 28 * 28 }, (_, k) => (Math.floor(k / 784) * 3 + (k % 784)) & 255);
const labs = (n: number) => Uint8Array.from({ length: n }, (_, i) => i % 10);

let root: string;
beforeAll(() => {
  root = tempDir();
  const gz = path.join(root, 'fashion-mnist-gz');
  fs.mkdirSync(gz);
  fs.writeFileSync(path.join(gz, 'train-images-idx3-ubyte.gz'), zlib.gzipSync(idx([N, 28, 28], imgs(N))));
  fs.writeFileSync(path.join(gz, 'train-labels-idx1-ubyte.gz'), zlib.gzipSync(idx([N], labs(N))));
  fs.writeFileSync(path.join(gz, 't10k-images-idx3-ubyte.gz'), zlib.gzipSync(idx([TN, 28, 28], imgs(TN))));
  fs.writeFileSync(path.join(gz, 't10k-labels-idx1-ubyte.gz'), zlib.gzipSync(idx([TN], labs(TN))));
  const raw = path.join(root, 'digits');
  fs.mkdirSync(raw);
  fs.writeFileSync(path.join(raw, 'train-images-idx3-ubyte'), idx([N, 28, 28], imgs(N)));
  fs.writeFileSync(path.join(raw, 'train-labels-idx1-ubyte'), idx([N], labs(N)));
});
afterAll(() => rmrf(root));

describe('IDX', () => {
  it('reads gzipped IDX with a t10k test split; Fashion-MNIST names; 1 → 3 channels', async () => {
    const d = await prepareData({ path: path.join(root, 'fashion-mnist-gz'), imageSize: [28, 28], channels: 3, normalize: 'none' });
    expect(d.classes).toEqual(FASHION_MNIST_CLASSES);
    expect(d.train.count + d.val.count).toBe(N);
    expect(d.test?.count).toBe(TN);
    expect(d.train.storedChannels).toBe(1);
    expect(d.train.channels).toBe(3);
    const it0 = batches(d.test!, { batchSize: 4, shuffle: false, seed: 0, epoch: 0, mean: [0, 0, 0], std: [1, 1, 1] });
    const b = (await it0.next()).value!;
    expect(b.x.length).toBe(4 * 3 * 784);
    // Image 1, pixel 5: value (1*3 + 5) / 255 in each of the three channels.
    for (let c = 0; c < 3; c++) expect(b.x[1 * 3 * 784 + c * 784 + 5]).toBeCloseTo(8 / 255, 6);
    expect(Array.from(b.y, Number)).toEqual([0, 1, 2, 3]);
  });

  it('reads raw IDX (directory or images file) with digit names and resizes', async () => {
    const d = await prepareData({ path: path.join(root, 'digits'), imageSize: [28, 28], channels: 1, noCache: true });
    expect(d.classes).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    expect(d.test).toBeUndefined();
    expect(Array.from(d.train.image(0)).slice(0, 3)).toEqual(Array.from(imgs(N).subarray(d.train.rows[0]! * 784, d.train.rows[0]! * 784 + 3)));
    const f = path.join(root, 'digits', 'train-images-idx3-ubyte');
    const d2 = await prepareData({ path: f, imageSize: [32, 32], channels: 1, noCache: true });
    expect(d2.train.height).toBe(32);
    expect(d2.train.storedChannels).toBe(1);
  });

  it('rejects mismatched counts and a corrupt header', async () => {
    const bad = path.join(root, 'bad');
    fs.mkdirSync(bad);
    fs.writeFileSync(path.join(bad, 'train-images-idx3-ubyte'), idx([N, 28, 28], imgs(N)));
    fs.writeFileSync(path.join(bad, 'train-labels-idx1-ubyte'), idx([N - 1], labs(N - 1)));
    await expect(prepareData({ path: bad, imageSize: [28, 28], channels: 1 })).rejects.toThrow(DataError);
    await expect(prepareData({ path: bad, imageSize: [28, 28], channels: 1 })).rejects.toThrow(/59 labels/);
    fs.writeFileSync(path.join(bad, 'train-labels-idx1-ubyte'), Buffer.from([1, 2, 3, 4, 5]));
    await expect(prepareData({ path: bad, imageSize: [28, 28], channels: 1 })).rejects.toThrow(/train-labels-idx1-ubyte: not an IDX file/);
  });
});

let fashionDir: string | null = null;
try {
  const files = execFileSync('dpkg', ['-L', 'dataset-fashion-mnist'], { encoding: 'utf8' }).split('\n');
  const f = files.find((l) => l.endsWith('train-images-idx3-ubyte.gz'));
  if (f && fs.existsSync(f)) fashionDir = path.dirname(f);
} catch { /* not installed */ }
if (!fashionDir) console.warn('dataset-fashion-mnist not installed (apt-get install dataset-fashion-mnist; .ci/run installs it): skipping the real Fashion-MNIST test');

describe.skipIf(!fashionDir)('real Fashion-MNIST (dataset-fashion-mnist package)', () => {
  it('reads 60,000 + 10,000 images with class names', async () => {
    const d = await prepareData({ path: fashionDir!, imageSize: [28, 28], channels: 1 });
    expect(d.classes).toEqual(FASHION_MNIST_CLASSES);
    expect(d.train.count + d.val.count).toBe(60000);
    expect(d.val.count).toBe(12000);
    expect(d.test?.count).toBe(10000);
    const perClass = new Array(10).fill(0);
    for (const l of d.val.labels) perClass[l]++;
    expect(perClass).toEqual(new Array(10).fill(1200));
  });
});
