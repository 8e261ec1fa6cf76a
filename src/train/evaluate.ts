/** Runs every block's eval graph over a split and collects the goodness matrices. */
import { batches, type ImageSet } from '../data/index.js';
import { imagesTensor, type Tensor } from '../runtime/tensors.js';
import type { BlockRunner } from './runner.js';

export interface SplitGoodness {
  labels: Int32Array;
  /** Per block, [n, J] goodness. */
  goodness: Float32Array[];
}

export async function collectGoodness(
  runners: BlockRunner[],
  set: ImageSet,
  opts: { batchSize: number; classes: number; mean: number[]; std: number[]; onBatch?: (done: number, total: number) => void },
): Promise<SplitGoodness> {
  const n = set.count;
  const J = opts.classes;
  const goodness = runners.map(() => new Float32Array(n * J));
  const labels = new Int32Array(n);
  const dims = [set.channels, set.height, set.width];
  let offset = 0;
  for await (const batch of batches(set, { batchSize: opts.batchSize, shuffle: false, seed: 0, epoch: 0, mean: opts.mean, std: opts.std })) {
    let x: Tensor = imagesTensor(batch.x, batch.n, dims);
    for (let k = 0; k < runners.length; k++) {
      const r = await runners[k]!.evaluate(x);
      goodness[k]!.set(r.goodness, offset * J);
      x = r.next;
    }
    for (let i = 0; i < batch.n; i++) labels[offset + i] = Number(batch.y[i]);
    offset += batch.n;
    opts.onBatch?.(offset, n);
  }
  return { labels, goodness };
}
