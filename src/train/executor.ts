/**
 * Who runs the blocks: the epoch loop hands batches to a BlockExecutor and reads back every
 * block's loss and goodness, without knowing whether the blocks run one after another on this
 * thread (SerialExecutor) or as a pipeline across worker threads (train/pipeline/).
 */
import ort from 'onnxruntime-node';
import type { ImageSet } from '../data/index.js';
import { collectGoodness, type SplitGoodness } from './evaluate.js';
import type { BlockRunner, BlockState, BlockWeights } from './runner.js';

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

/** Every block on this thread, one after another — the reference schedule. */
export class SerialExecutor implements BlockExecutor {
  readonly depth = 1;
  private readonly seconds: number[];

  constructor(readonly runners: BlockRunner[]) {
    this.seconds = runners.map(() => 0);
  }

  async train(x: Float32Array, dims: number[], n: number, _step: number, labels: BigInt64Array): Promise<BatchResult> {
    const y = new ort.Tensor('int64', labels.subarray(0, n), [n]);
    let input: ort.Tensor = new ort.Tensor('float32', x.subarray(0, n * dims.reduce((a, d) => a * d, 1)), [n, ...dims]);
    const result: BatchResult = { losses: [], goodness: [] };
    for (let k = 0; k < this.runners.length; k++) {
      const t0 = performance.now();
      const r = await this.runners[k]!.trainStep(input, y);
      this.seconds[k]! += (performance.now() - t0) / 1000;
      result.losses.push(r.loss);
      result.goodness.push(r.goodness);
      input = r.next;
    }
    return result;
  }

  evaluate(set: ImageSet, opts: EvalOptions): Promise<SplitGoodness> {
    return collectGoodness(this.runners, set, opts);
  }

  async snapshot(): Promise<BlockState[]> {
    return this.runners.map((r) => r.snapshot());
  }

  async weights(): Promise<BlockWeights[]> {
    return this.runners.map((r) => r.weights());
  }

  async setWeights(weights: BlockWeights[]): Promise<void> {
    this.runners.forEach((r, k) => r.setWeights(weights[k]!));
  }

  async restore(states: BlockState[]): Promise<void> {
    this.runners.forEach((r, k) => r.restore(states[k]!));
  }

  async setLr(lrs: number[]): Promise<void> {
    this.runners.forEach((r, k) => (r.lr = lrs[k]!));
  }

  async takeSeconds(): Promise<number[]> {
    const s = [...this.seconds];
    this.seconds.fill(0);
    return s;
  }

  async close(): Promise<void> {
    await Promise.all(this.runners.map((r) => r.release()));
  }
}
