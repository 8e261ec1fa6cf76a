/**
 * The interface between the epoch loop and whoever runs the blocks (./executor.ts SerialExecutor,
 * or the pipeline across worker threads in ./pipeline/): what one batch returns and what an executor does.
 */
import type { ImageSet } from '../data/index.js';
import type { SplitGoodness } from './evaluate.js';
import type { BlockState, BlockWeights } from './runner.js';

/** Per block of one batch: its loss (NaN for evaluation) and its [n, J] goodness. */
export interface BatchResult {
  losses: number[];
  goodness: Float32Array[];
}

export interface EvalOptions {
  batchSize: number;
  classes: number;
  mean: number[];
  std: number[];
  /** After each minibatch: images done so far, and the split's size. */
  onBatch?: (done: number, total: number) => void;
}

export interface BlockExecutor {
  /**
   * Batches the loop may have submitted and not yet read back. A result's arrays stay valid until
   * `depth` further batches were submitted.
   */
  readonly depth: number;
  /** One training step of every block on a batch (x: [n, ...dims] floats, labels: n). `step` counts from 1. */
  train(x: Float32Array, dims: number[], n: number, step: number, labels: BigInt64Array): Promise<BatchResult>;
  /** Every block's eval graph over a split. */
  evaluate(set: ImageSet, opts: EvalOptions): Promise<SplitGoodness>;
  snapshot(): Promise<BlockState[]>;
  weights(): Promise<BlockWeights[]>;
  setWeights(weights: BlockWeights[]): Promise<void>;
  restore(states: BlockState[]): Promise<void>;
  setLr(lrs: number[]): Promise<void>;
  /** Each block's busy seconds since the last call. */
  takeSeconds(): Promise<number[]>;
  close(): Promise<void>;
}
