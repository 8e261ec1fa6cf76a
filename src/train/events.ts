/**
 * What a fine-tuning run reports while it runs: structured events, never preformatted text.
 * The library emits them to `FinetuneOptions.onEvent`; the CLI (and the bench's log files)
 * render them with `createReporter` / `formatEvent` in ./report.ts.
 */
import type { EpochMetrics } from './metrics.js';
import type { RunConfig } from './runConfig.js';
import type { LatencyNote } from '../export/latency.js';
import type { TestMetrics } from './testReport.js';

/** The long phases of a run, in order (`evaluate`: scoring an exported model, `sff-finetune eval`). */
export type Phase = 'decode' | 'build' | 'train' | 'validate' | 'export-check' | 'evaluate';

export interface ProgressEvent {
  type: 'progress';
  phase: Phase;
  /** Epoch (1-based) of a train/validate phase. */
  epoch?: number;
  epochs?: number;
  done: number;
  total: number;
  /** What `done`/`total` count. */
  unit: 'images' | 'blocks' | 'steps' | 'batches';
  /** Seconds since the phase began. */
  elapsedSeconds: number;
  /** Estimated seconds left in this phase, and in the whole run (every remaining epoch, validation and the export check). */
  phaseEtaSeconds: number;
  runEtaSeconds?: number;
  /** Train phase: images per second so far, and the running mean over this epoch's steps of the per-block mean step loss. */
  imagesPerSecond?: number;
  meanLoss?: number;
}

export interface BlockBuiltEvent {
  type: 'block';
  index: number;
  name: string;
  outputShape: number[];
  /** Parameters of the block itself and of its aux head. */
  params: number;
  headParams: number;
  frozen: boolean;
  /** CwC-mod's linear head on the detached last block. */
  probe: boolean;
  buildSeconds: number;
}

export type FinetuneEvent =
  | { type: 'model'; source: string; description: string; blocks: number }
  | { type: 'data'; source: string; classes: string[]; train: number; val: number; test?: number; skipped: { path: string; reason: string }[] }
  | { type: 'config'; config: RunConfig; path: string }
  | { type: 'warning'; message: string }
  /** How the head block's J-way map starts: classifier rows matched on training images (`source` per class), or random. */
  | { type: 'head-init'; classes: string[]; matched?: { source: number[]; meanProb: number[]; images: number } }
  /** Something the run did on its own that the user should know (a stale temporary file removed, a folder cleared by --overwrite). */
  | { type: 'note'; message: string }
  | BlockBuiltEvent
  | { type: 'resume'; fromEpoch: number; out: string }
  | ProgressEvent
  | { type: 'step'; epoch: number; step: number; steps: number; losses: number[] }
  | { type: 'epoch'; metrics: EpochMetrics; blocks: string[]; epochs: number }
  | { type: 'early-stop'; patience: number; bestAccuracy: number; bestEpoch: number }
  | { type: 'export'; path: string; sidecar: string; check: ExportCheck; heads: string[]; latency?: LatencyNote }
  | { type: 'summary'; result: FinetuneResult }
  /** Stopped by the signal (Ctrl-C) before the last epoch: what was kept, and how to continue. */
  | { type: 'interrupted'; out: string; epochs: number; exportedEpoch?: number };

/** The exported model run on the validation split against the training-time ensemble. */
export interface ExportCheck {
  maxAbsDiff: number;
  accuracy: number;
  trainingAccuracy: number;
  scale: number;
  /** The largest difference taken as a match: 1e-3 of the score scale, 2e-2 with float16 weights. */
  tolerance: number;
  /**
   * With `--ensemble weighted` the weights were fitted on these same validation images, so
   * `accuracy` is optimistic: this is the run's 2-fold cross-validated figure, the one it reports.
   */
  crossValidated?: number;
}

export interface FinetuneResult {
  out: string;
  modelPath?: string;
  /** model.json beside model.onnx, the goodness outputs kept in the export, and its measured latency. */
  sidecarPath?: string;
  exportedHeads?: string[];
  latency?: LatencyNote;
  config: RunConfig;
  history: EpochMetrics[];
  best: EpochMetrics | undefined;
  exportCheck?: ExportCheck;
  blocks: { index: number; name: string; params: number; headParams: number; frozen: boolean }[];
  peakRssMB: number;
  /** Trainable parameters, aux heads (and CwC-mod's linear probe) included. */
  trainableParams: number;
  stoppedEarly: boolean;
  /** Accuracy on the held-out test split (--split with a test share, or --test DIR), computed once at the end. */
  test?: TestMetrics;
  /** Stopped by `signal` (Ctrl-C in the CLI) before its last epoch; the checkpoint holds the last finished epoch. */
  interrupted?: boolean;
}
