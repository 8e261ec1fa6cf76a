/** The resolved configuration of a run (see options.ts `resolveConfig`), and the export choices it holds. */
import type { HeadPoolSetting, NormPlacement } from '../sff/head.js';
import type { AugmentPreset } from '../data/augment.js';
import type { LrSchedule } from './schedule.js';

export type ExportHeads = 'ensemble' | 'all';
export type ExportScores = 'logits' | 'probabilities';
export type ExportDtype = 'float32' | 'float16';

/** The resolved configuration, stored in checkpoints so a resume rebuilds the same run. */
export type Method = 'sff' | 'bp' | 'cwc';

export interface RunConfig {
  method: Method;
  model: string;
  data: string;
  out: string;
  epochs: number;
  batchSize: number;
  lr: number;
  weightDecay: number;
  bnMomentum?: number;
  seed: number;
  ensemble: string;
  norm: NormPlacement;
  auxKernel: number;
  /** Head pooling; absent means off (so checkpoints written before the option resume unchanged). */
  headPool?: HeadPoolSetting;
  blocks: string;
  freeze: string[];
  normalize: string;
  /** A preset; checkpoints written before presets hold a boolean (true = crop). */
  augment: AugmentPreset | boolean;
  subset?: number;
  testData?: string;
  imageSize: [number, number];
  valFraction: number;
  /** Held-out test share of the training data (absent: none, or a separate --test set). */
  testFraction?: number;
  /** Absent in checkpoints written before these options existed (= false, 0). */
  headBlock?: boolean;
  headInit?: 'matched' | 'random';
  pooledHeads?: number;
  /** Absent in older checkpoints (= plateau, no warm-up, no smoothing). */
  schedule?: LrSchedule;
  warmup?: number;
  labelSmoothing?: number;
  lrPatience: number;
  stopPatience: number;
  maxStepsPerEpoch?: number;
  classes: string[];
  /** Export choices (absent in checkpoints written before they existed: the defaults then). */
  exportHeads?: ExportHeads;
  exportScores?: ExportScores;
  exportDtype?: ExportDtype;
}
