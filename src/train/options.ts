/** Options of a fine-tuning run, their defaults, and how they are resolved against the model and data. */
import type { NormPlacement } from '../sff/head.js';
import type { AugmentPreset } from '../data/augment.js';
import type { LrSchedule } from './schedule.js';

export interface FinetuneOptions {
  /** Path to an .onnx model, or `builtin:<cnn|cnnb|resnet18|mobilenetv3-small>`. */
  model: string;
  /** Dataset path (see `prepareData`), or `builtin:shapes`. */
  data: string;
  /** sff (default), bp (end-to-end baseline) or cwc (CwC-mod baseline), SPEC §5. */
  method?: Method;
  /** Output folder (default artifacts/<model name>). */
  out?: string;
  epochs?: number;
  batchSize?: number;
  lr?: number;
  weightDecay?: number;
  /**
   * PyTorch-style momentum of BatchNorm running statistics (weight of each new batch). Default:
   * each BN node's own (torchvision's MobileNetV3 uses 0.01, which needs hundreds of steps
   * before evaluation-mode statistics are usable: raise it for short runs on small data).
   */
  bnMomentum?: number;
  seed?: number;
  threads?: number;
  device?: string;
  /** all | last:K | weighted | auto (all from scratch, last:4 for pretrained graphs). */
  ensemble?: string;
  /** chain | head | none | auto (chain from scratch, none for pretrained graphs). */
  norm?: NormPlacement | 'auto';
  /** Aux conv kernel size, or 'auto' (5 for J ≤ 10, else 3). */
  auxKernel?: number | 'auto';
  /** auto | cuts | comma-separated cut tensors. */
  blocks?: string;
  /** Block names or indices to run forward only (their heads still train). */
  freeze?: string[];
  normalize?: string;
  /** Augmentation preset (none | flip | crop | rrc | rrc-light, see data/augment.ts); true = crop. */
  augment?: boolean | string;
  subset?: number;
  testData?: string;
  imageSize?: number;
  valFraction?: number;
  /** train/val/test shares, e.g. "70/15/15": a stratified, seeded held-out test split (replaces valFraction). */
  split?: string;
  /**
   * Run the pretrained network's own head (the layers between the last feature map and its
   * classifier) as a final SFF block with a J-way pooled linear goodness head (auto: off).
   */
  headBlock?: boolean | 'auto';
  /**
   * How the head block's J-way map starts: 'matched' (default) from the pretrained classifier's
   * rows of the source classes matched to the new ones on training images; 'random'.
   */
  headInit?: 'matched' | 'random';
  /** The last K body blocks score with a pooled linear head instead of the aux conv (default 0). */
  pooledHeads?: number;
  /** Learning-rate shape: plateau (per-block ReduceLROnPlateau, default) or cosine decay over the run. */
  schedule?: LrSchedule;
  /** Linear warm-up length in epochs (fractions allowed; default 0). */
  warmup?: number;
  /** Label smoothing ε of every block's loss (default 0). */
  labelSmoothing?: number;
  /** Plateau patience per block (epochs, default 10) and early-stopping patience (default 30). */
  lrPatience?: number;
  stopPatience?: number;
  /** Resume from the checkpoint in this folder. */
  resume?: string;
  memArena?: boolean;
  cacheDir?: string;
  /** Stop each epoch after this many steps (quick runs and tests). */
  maxStepsPerEpoch?: number;
  /** Skip the export and its check. */
  noExport?: boolean;
  /** Print nothing (library use); events still reach `onEvent`. */
  quiet?: boolean;
  onEvent?: (e: FinetuneEvent) => void;
}

/** An option value outside its range (the message names the option and the range). */
export class OptionError extends Error {
  override name = 'OptionError';
}

export type FinetuneEvent =
  | { type: 'log'; message: string }
  | { type: 'epoch'; metrics: import('./metrics.js').EpochMetrics }
  | { type: 'step'; epoch: number; step: number; steps: number; losses: number[] };

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
}
