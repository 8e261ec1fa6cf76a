/**
 * Minibatch iterator: seeded shuffle, optional augmentation (training split only),
 * uint8 HWC → normalised float32 NCHW, with one batch of prefetch.
 *
 * Buffer lifetime: batches live in a ring of 3 preallocated slots. The batch returned by
 * the t-th `next()` stays valid until the consumer requests batch t+2 (the batch after
 * next); copy anything needed for longer. Batch t+1 is assembled in the background
 * (`setImmediate`) as soon as batch t is handed out, so it is built while the consumer
 * awaits its own work (e.g. an onnxruntime run).
 */
import type { ImageSet } from './imageSet.js';
import { augmentInto, cropPadding, makeLut, writeNCHW, writeNCHWAugmented3 } from './preprocess.js';
import { Rng, STREAM, epochOrder } from '../util/rng.js';
import { augmentRecipe, parseAugment, resizedCropInto, sampleResizedCrop, type AugmentPreset, type AugmentRecipe } from './augment.js';

export interface Batch {
  /** n·C·H·W floats, NCHW. */
  x: Float32Array;
  /** n int64 labels. */
  y: BigInt64Array;
  /** Number of samples in this batch (≤ batchSize). */
  n: number;
  /** Index into the ImageSet of each sample. */
  indices: Int32Array;
}

export interface BatchOptions {
  batchSize: number;
  shuffle: boolean;
  seed: number;
  epoch: number;
  /**
   * Augmentation preset (see augment.ts; `true` = 'crop', random crop with padding + flip);
   * applied only when set.role === 'train'.
   */
  augment?: boolean | AugmentPreset;
  dropLast?: boolean;
  mean: number[];
  std: number[];
}

const RING = 3;

interface Slot {
  x: Float32Array;
  y: BigInt64Array;
  indices: Int32Array;
  batch: Batch;
}

class BatchIterator implements AsyncIterableIterator<Batch> {
  private readonly order: Int32Array;
  private readonly numBatches: number;
  private readonly slots: Slot[] = [];
  private readonly lut: Float32Array;
  private readonly augRng: Rng | null;
  private readonly recipe: AugmentRecipe;
  private readonly scratch: Uint8Array | null;
  private readonly pad: number;
  private readonly chw: number;
  private readonly hw: number;
  private readonly bytes: number;
  private t = 0; // index of the next batch to hand out
  private prefetch: Promise<void> | null = null;
  private prefetched = -1; // batch index whose data sits ready in its slot
  private closed = false;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly set: ImageSet, private readonly opts: BatchOptions) {
    const { batchSize } = opts;
    if (!Number.isInteger(batchSize) || batchSize <= 0) throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
    const n = set.count;
    this.order = opts.shuffle ? epochOrder(opts.seed, opts.epoch, n) : Int32Array.from({ length: n }, (_, i) => i);
    this.numBatches = opts.dropLast ? Math.floor(n / batchSize) : Math.ceil(n / batchSize);
    this.hw = set.height * set.width;
    this.chw = set.channels * this.hw;
    this.bytes = set.storedChannels * this.hw;
    this.lut = makeLut(opts.mean, opts.std, set.channels);
    this.recipe = augmentRecipe(set.role === 'train' ? parseAugment(opts.augment) : 'none');
    const augment = this.recipe.crop !== 'none' || this.recipe.flip;
    this.augRng = augment ? new Rng(opts.seed, opts.epoch, STREAM.augment) : null;
    this.scratch = augment ? new Uint8Array(this.bytes) : null;
    this.pad = this.recipe.crop === 'pad' ? cropPadding(set.height, set.width) : 0;
    const slots = Math.min(RING, Math.max(1, this.numBatches));
    for (let s = 0; s < slots; s++) {
      const x = new Float32Array(batchSize * this.chw);
      const y = new BigInt64Array(batchSize);
      const indices = new Int32Array(batchSize);
      this.slots.push({ x, y, indices, batch: { x, y, n: batchSize, indices } });
    }
  }

  private fill(t: number): void {
    const { set, order, lut, chw, hw, bytes } = this;
    const bs = this.opts.batchSize;
    const slot = this.slots[t % this.slots.length]!;
    const start = t * bs;
    const n = Math.min(bs, order.length - start);
    const { x, y, indices } = slot;
    const store = set.store, rows = set.rows, labels = set.labels;
    const sc = set.storedChannels, oc = set.channels;
    const rng = this.augRng, scratch = this.scratch, pad = this.pad, h = set.height, w = set.width;
    for (let k = 0; k < n; k++) {
      const i = order[start + k]!;
      const off = rows[i]! * bytes;
      const src = store.subarray(off, off + bytes);
      if (rng && scratch && this.recipe.crop === 'resized') {
        const box = sampleResizedCrop(rng, h, w, this.recipe.scale);
        resizedCropInto(src, h, w, sc, box, rng.next() < 0.5, scratch);
        writeNCHW(scratch, sc, hw, x, k * chw, oc, lut);
      } else if (rng && scratch) {
        const dy = rng.int(2 * pad + 1), dx = rng.int(2 * pad + 1);
        const flip = rng.next() < 0.5;
        if (sc === 3 && oc === 3) {
          writeNCHWAugmented3(src, h, w, x, k * chw, lut, pad, dy, dx, flip);
        } else {
          augmentInto(src, h, w, sc, pad, dy, dx, flip, scratch);
          writeNCHW(scratch, sc, hw, x, k * chw, oc, lut);
        }
      } else {
        writeNCHW(src, sc, hw, x, k * chw, oc, lut);
      }
      y[k] = BigInt(labels[i]!);
      indices[k] = i;
    }
    const b = slot.batch;
    b.n = n;
    if (n === bs) {
      b.x = x; b.y = y; b.indices = indices;
    } else {
      b.x = x.subarray(0, n * chw); b.y = y.subarray(0, n); b.indices = indices.subarray(0, n);
    }
    this.prefetched = t;
  }

  private schedule(t: number): void {
    if (t >= this.numBatches || this.closed) {
      this.prefetch = null;
      return;
    }
    this.prefetch = new Promise<void>((resolve, reject) => {
      setImmediate(() => {
        try {
          if (!this.closed) this.fill(t);
          resolve();
        } catch (e) {
          reject(e);
        }
      });
    });
  }

  /** Calls are serialised, so overlapping next() calls still get consecutive batches. */
  next(): Promise<IteratorResult<Batch>> {
    const r = this.chain.then(() => this.step());
    this.chain = r.catch(() => undefined);
    return r;
  }

  private async step(): Promise<IteratorResult<Batch>> {
    if (this.closed || this.t >= this.numBatches) {
      this.closed = true;
      return { value: undefined, done: true };
    }
    const t = this.t;
    if (this.prefetch) await this.prefetch;
    if (this.prefetched !== t) this.fill(t);
    this.t = t + 1;
    this.schedule(t + 1);
    return { value: this.slots[t % this.slots.length]!.batch, done: false };
  }

  async return(): Promise<IteratorResult<Batch>> {
    this.closed = true;
    if (this.prefetch) await this.prefetch.catch(() => undefined);
    this.prefetch = null;
    return { value: undefined, done: true };
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<Batch> {
    return this;
  }
}

/**
 * Iterates one epoch of `set` in minibatches. Order: `epochOrder(seed, epoch, count)` when
 * `shuffle`, else 0..count-1. Augmentation randomness is derived from (seed, epoch) too,
 * so an epoch is reproducible on its own (e.g. after resuming).
 */
export function batches(set: ImageSet, opts: BatchOptions): AsyncIterableIterator<Batch> {
  return new BatchIterator(set, opts);
}
