/** Per-epoch metrics, computed from goodness matrices (written out by ./metricsFiles.ts). */
import { accuracy, ensembleAccuracy, ensembleWeights, parseEnsemble, reportedRules } from '../sff/ensemble.js';
import type { SplitGoodness } from './evaluate.js';

export interface SplitMetrics {
  /** Per-block mean SFF loss. */
  loss: number[];
  /** Per-block top-1 accuracy of its own goodness. */
  acc: number[];
  /** Ensemble ("layers") accuracy for each ensemble rule evaluated. */
  layers: Record<string, number>;
}

export interface EpochMetrics {
  epoch: number;
  /** When the epoch ended (ISO 8601, UTC); absent in checkpoints written before it was recorded. */
  time?: string;
  train: SplitMetrics;
  val: SplitMetrics;
  /** The ensemble rule used for early stopping and export, and its weights. */
  ensemble: { rule: string; weights: number[]; acc: number };
  lr: number[];
  /** Wall time of the whole epoch (training + validation), seconds. */
  seconds: number;
  /** Wall time of the training part of the epoch, its number of steps, and the mean wall time per step. */
  trainSeconds: number;
  steps: number;
  stepSeconds: number;
  /** Trainable parameters of the run, aux heads (and CwC-mod's linear probe) included. */
  trainableParams: number;
  imagesPerSecond: number;
  /** Per-block train-step throughput (images/s of the block's own session time). */
  blockImagesPerSecond: number[];
  peakRssMB: number;
}

/** SFF loss of one goodness matrix: mean_n(logsumexp_j g − g[n, y_n]). */
export function goodnessLoss(g: Float32Array, labels: ArrayLike<number>, j: number): number {
  const n = labels.length;
  let total = 0;
  for (let r = 0; r < n; r++) {
    let max = -Infinity;
    for (let c = 0; c < j; c++) max = Math.max(max, g[r * j + c]!);
    let s = 0;
    for (let c = 0; c < j; c++) s += Math.exp(g[r * j + c]! - max);
    total += max + Math.log(s) - g[r * j + labels[r]!]!;
  }
  return n ? total / n : 0;
}

/** Accumulates per-block loss and correct counts over minibatches. */
export class RunningMetrics {
  private loss: number[];
  private correct: number[];
  private ensembleCorrect = 0;
  private seen = 0;
  private readonly sum: Float32Array;

  constructor(
    readonly blocks: number,
    readonly classes: number,
    maxBatch: number,
  ) {
    this.loss = new Array(blocks).fill(0);
    this.correct = new Array(blocks).fill(0);
    this.sum = new Float32Array(maxBatch * classes);
  }

  /** Adds one block's minibatch result (loss is the batch mean); `ensemble`: counts in the "layers" mean. */
  addBlock(k: number, loss: number, goodness: Float32Array, labels: ArrayLike<number>, ensemble = true): void {
    const n = labels.length;
    this.loss[k]! += loss * n;
    this.correct[k]! += Math.round(accuracy(goodness, labels, this.classes) * n);
    if (k === 0) this.sum.fill(0, 0, n * this.classes);
    if (ensemble) for (let i = 0; i < n * this.classes; i++) this.sum[i]! += goodness[i]!;
  }

  /** Closes a minibatch after all blocks were added (ensemble = mean goodness of all blocks). */
  endBatch(labels: ArrayLike<number>): void {
    const n = labels.length;
    this.ensembleCorrect += Math.round(accuracy(this.sum.subarray(0, n * this.classes), labels, this.classes) * n);
    this.seen += n;
  }

  result(): SplitMetrics {
    const n = Math.max(this.seen, 1);
    return { loss: this.loss.map((l) => l / n), acc: this.correct.map((c) => c / n), layers: { all: this.ensembleCorrect / n } };
  }
}

/** Per-block loss and accuracy of a split's goodness (the ensembles are added by `ensembleReport`). */
export function splitMetrics(sg: SplitGoodness, J: number): SplitMetrics {
  return {
    loss: sg.goodness.map((g) => goodnessLoss(g, sg.labels, J)),
    acc: sg.goodness.map((g) => accuracy(g, sg.labels, J)),
    layers: {},
  };
}

/** Accuracy of the run's ensemble rule and of the reference rules beside it, and the rule's weights. */
export function ensembleReport(sg: SplitGoodness, J: number, cfgRule: string): { layers: Record<string, number>; weights: number[]; acc: number } {
  const K = sg.goodness.length;
  const rules = reportedRules(K, cfgRule);
  const layers: Record<string, number> = {};
  let chosen: number[] = [];
  for (const rule of rules) {
    const spec = parseEnsemble(rule);
    layers[rule] = ensembleAccuracy(spec, sg.goodness, sg.labels, J);
    if (rule === cfgRule) chosen = ensembleWeights(spec, sg.goodness, sg.labels, J);
  }
  return { layers, weights: chosen, acc: layers[cfgRule]! };
}

/**
 * Peak resident memory of this process (the OS high-water mark, MB). onnxruntime's own arena
 * peak is not reported: onnxruntime-node exposes no allocator statistics.
 */
export function peakRssMB(): number {
  return process.resourceUsage().maxRSS / 1024;
}
