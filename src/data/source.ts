/** What a format reader hands to `prepareData` before decoding / resizing. */

/** Images already in memory as uint8 HWC at their native size (CIFAR, IDX, synthetic). */
export interface RawPart {
  kind: 'raw';
  store: Uint8Array;
  height: number;
  width: number;
  channels: 1 | 3;
  labels: Int32Array;
  /** Source files (absolute) this came from, for the cache key; empty for synthetic data. */
  files: string[];
  /** Human-readable origin, used in messages. */
  origin: string;
}

/** Encoded image files to decode with sharp (image-folder trees). */
export interface FilePart {
  kind: 'files';
  /** Absolute paths. */
  files: string[];
  labels: Int32Array;
  origin: string;
}

/** Images rendered on demand at the requested size (the built-in synthetic dataset). */
export interface GeneratedPart {
  kind: 'generated';
  labels: Int32Array;
  channels: 3;
  /** Renders sample i at height×width into `out` (HWC). */
  render(i: number, height: number, width: number, out: Uint8Array): void;
  origin: string;
}

export type SourcePart = RawPart | FilePart | GeneratedPart;

export interface LoadedSource {
  /** e.g. 'image folder', 'CIFAR-10 binary', 'IDX', 'synthetic shapes'. */
  format: string;
  classes: string[];
  train: SourcePart;
  /** The source's own test split (CIFAR test batch, IDX t10k, folder val/ or test/). */
  test?: SourcePart;
  /** Absolute path (or builtin:…) of the source. */
  location: string;
  /** Things the user should know that do not stop the run (e.g. duplicate files dropped). */
  warnings?: string[];
}
