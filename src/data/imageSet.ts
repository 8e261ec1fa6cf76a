/**
 * Decoded images kept as uint8 HWC at the model's input size.
 *
 * Several sets (train / val / test) can share one backing `store`; each set holds the
 * store row of each of its images (`rows`), so splitting never copies pixels.
 */

export type SplitRole = 'train' | 'val' | 'test';

export interface ImageSet {
  readonly count: number;
  /** Class index of each image (0-based into PreparedData.classes). */
  readonly labels: Int32Array;
  readonly height: number;
  readonly width: number;
  /** Channels delivered to the model (1 or 3). */
  readonly channels: number;
  /** Which split this is; augmentation in `batches()` applies to 'train' only. */
  readonly role: SplitRole;
  /** Channels stored per pixel in `store` (1 or 3); converted to `channels` when batched. */
  readonly storedChannels: number;
  /** Backing uint8 HWC storage, `storedChannels * height * width` bytes per row. */
  readonly store: Uint8Array;
  /** Row of `store` holding image i. */
  readonly rows: Int32Array;
  /** HWC pixels of image i (a view into `store`, no copy). */
  image(i: number): Uint8Array;
}

export class U8ImageSet implements ImageSet {
  readonly count: number;
  constructor(
    readonly role: SplitRole,
    readonly store: Uint8Array,
    readonly storedChannels: number,
    readonly height: number,
    readonly width: number,
    readonly channels: number,
    readonly rows: Int32Array,
    readonly labels: Int32Array,
  ) {
    if (rows.length !== labels.length) throw new Error('U8ImageSet: rows and labels differ in length');
    this.count = rows.length;
  }

  get bytesPerImage(): number {
    return this.storedChannels * this.height * this.width;
  }

  image(i: number): Uint8Array {
    if (i < 0 || i >= this.count) throw new RangeError(`image index ${i} out of range [0, ${this.count})`);
    const b = this.storedChannels * this.height * this.width;
    const off = this.rows[i]! * b;
    return this.store.subarray(off, off + b);
  }

  /** A new set over the same store made of images `idx` (indices into this set). */
  select(idx: ArrayLike<number>, role: SplitRole = this.role): U8ImageSet {
    const rows = new Int32Array(idx.length);
    const labels = new Int32Array(idx.length);
    for (let k = 0; k < idx.length; k++) {
      const i = idx[k]!;
      rows[k] = this.rows[i]!;
      labels[k] = this.labels[i]!;
    }
    return new U8ImageSet(role, this.store, this.storedChannels, this.height, this.width, this.channels, rows, labels);
  }
}
