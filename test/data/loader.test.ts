import { describe, expect, it } from 'vitest';
import { U8ImageSet, batches, epochOrder, prepareData } from '../../src/data/index.js';
import { collect } from './helpers.js';

const H = 8, W = 8, C = 3, N = 37;
const store = Uint8Array.from({ length: N * H * W * C }, (_, k) => (k * 13 + (k >> 7)) & 255);
const rows = Int32Array.from({ length: N }, (_, i) => i);
const labels = Int32Array.from({ length: N }, (_, i) => i % 5);
const trainSet = new U8ImageSet('train', store, C, H, W, C, rows, labels);
const valSet = new U8ImageSet('val', store, C, H, W, C, rows, labels);
const base = { batchSize: 10, seed: 3, epoch: 2, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] };

describe('batches', () => {
  it('yields every sample once in epochOrder, with a short last batch', async () => {
    const bs = await collect(batches(trainSet, { ...base, shuffle: true }));
    expect(bs.map((b) => b.n)).toEqual([10, 10, 10, 7]);
    expect(bs[3]!.x.length).toBe(7 * C * H * W);
    expect(bs[3]!.y.length).toBe(7);
    const order = bs.flatMap((b) => Array.from(b.indices));
    expect(order).toEqual(Array.from(epochOrder(3, 2, N)));
    expect(bs.flatMap((b) => Array.from(b.y, Number))).toEqual(order.map((i) => labels[i]!));
    // Same (seed, epoch) → identical batches; another epoch → another order.
    const again = await collect(batches(trainSet, { ...base, shuffle: true }));
    expect(again.map((b) => Array.from(b.x))).toEqual(bs.map((b) => Array.from(b.x)));
    const other = await collect(batches(trainSet, { ...base, epoch: 3, shuffle: true }));
    expect(other.flatMap((b) => Array.from(b.indices))).not.toEqual(order);
  });

  it('dropLast drops the short batch; shuffle false keeps order', async () => {
    const bs = await collect(batches(valSet, { ...base, shuffle: false, dropLast: true }));
    expect(bs.map((b) => b.n)).toEqual([10, 10, 10]);
    expect(bs.flatMap((b) => Array.from(b.indices))).toEqual(Array.from({ length: 30 }, (_, i) => i));
  });

  it('reuses a ring of 3 buffers; batch t stays valid until batch t+2 is requested', async () => {
    const it = batches(valSet, { ...base, batchSize: 4, shuffle: false });
    const got: Float32Array[] = [];
    const b0 = (await it.next()).value!;
    const snap0 = b0.x.slice();
    got.push(b0.x);
    const b1 = (await it.next()).value!;
    got.push(b1.x);
    // Give the background prefetch of batch 2 a chance to run.
    await new Promise((r) => setTimeout(r, 5));
    expect(Array.from(b0.x)).toEqual(Array.from(snap0)); // still valid while holding b1
    const b2 = (await it.next()).value!;
    got.push(b2.x);
    const b3 = (await it.next()).value!;
    expect(b3.x.buffer).toBe(got[0]!.buffer); // slot reuse, no new allocation
    expect(b3.x).toBe(got[0]);
    expect(new Set(got.map((x) => x.buffer)).size).toBe(3);
    await it.return!();
    expect((await it.next()).done).toBe(true);
  });

  it('a batch prefetched while the consumer awaited comes next, in order', async () => {
    const it = batches(valSet, { ...base, batchSize: 4, shuffle: false });
    await it.next();
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    const b = (await it.next()).value!;
    expect(Array.from(b.indices)).toEqual([4, 5, 6, 7]);
  });

  it('overlapping next() calls get consecutive batches', async () => {
    const it = batches(valSet, { ...base, batchSize: 4, shuffle: false });
    const [a, b] = await Promise.all([it.next(), it.next()]);
    expect(a.value!.indices[0]).toBe(0);
    expect(b.value!.indices[0]).toBe(4);
  });

  it('augments the training split only, reproducibly', async () => {
    const plain = await collect(batches(trainSet, { ...base, shuffle: true }));
    const aug1 = await collect(batches(trainSet, { ...base, shuffle: true, augment: true }));
    const aug2 = await collect(batches(trainSet, { ...base, shuffle: true, augment: true }));
    expect(aug1.map((b) => Array.from(b.x))).toEqual(aug2.map((b) => Array.from(b.x)));
    expect(aug1.map((b) => Array.from(b.x))).not.toEqual(plain.map((b) => Array.from(b.x)));
    expect(aug1.map((b) => Array.from(b.indices))).toEqual(plain.map((b) => Array.from(b.indices)));
    const valPlain = await collect(batches(valSet, { ...base, shuffle: true }));
    const valAug = await collect(batches(valSet, { ...base, shuffle: true, augment: true }));
    expect(valAug.map((b) => Array.from(b.x))).toEqual(valPlain.map((b) => Array.from(b.x)));
    // Padding fills with raw 0 → normalised (0 − 0.5)/0.5 = −1.
    expect(aug1.some((b) => b.x.includes(-1))).toBe(true);
  });

  it('converts 1-channel data to 3 channels and 3-channel to 1 on the fly', async () => {
    const g = new U8ImageSet('val', Uint8Array.from([0, 51, 102, 255]), 1, 2, 2, 3, Int32Array.from([0]), Int32Array.from([0]));
    const b = (await batches(g, { batchSize: 1, shuffle: false, seed: 0, epoch: 0, mean: [0, 0, 0], std: [1, 1, 1] }).next()).value!;
    expect(Array.from(b.x).map((v) => Math.round(v * 255))).toEqual([0, 51, 102, 255, 0, 51, 102, 255, 0, 51, 102, 255]);
    const d = await prepareData({ path: 'builtin:shapes', imageSize: [16, 16], channels: 1, subset: 20 });
    const b1 = (await batches(d.train, { batchSize: 8, shuffle: true, seed: 0, epoch: 0, ...d.preprocess }).next()).value!;
    expect(b1.x.length).toBe(8 * 16 * 16);
  });
});
