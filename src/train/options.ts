/** Options of a fine-tuning run, their defaults, and how they are resolved against the model and data. */
import { resolve, join } from 'node:path';
import { DATA_DEFAULTS } from '../data/index.js';
import { DEFAULT_HEAD_POOL, defaultAuxKernel, type HeadPoolSetting, type NormPlacement } from '../sff/head.js';
import { formatEnsemble, parseEnsemble } from '../sff/ensemble.js';
import { resolveInput, safeFileName } from '../util/paths.js';
import type { PreparedModel } from './model.js';
import type { FinetuneEvent } from './events.js';
import type { ExportDtype, ExportHeads, ExportScores, Method, RunConfig } from './runConfig.js';
import { parseSplit } from '../data/split.js';
import { parseAugment, type AugmentPreset } from '../data/augment.js';
import { checkLabelSmoothing } from '../sff/smoothing.js';
import { LR_SCHEDULES, type LrSchedule } from './schedule.js';
import { OptionError } from './optionError.js';

export interface FinetuneOptions {
  /** Path to an .onnx model, or `builtin:<cnn|cnnb|resnet18|mobilenetv3-small>`. */
  model: string;
  /** Dataset path (see `prepareData`), or `builtin:shapes`. */
  data: string;
  /** sff (default), bp (end-to-end baseline) or cwc (CwC-mod baseline), the paper's two comparisons. */
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
  /** onnxruntime intra-op threads per session; with a pipeline, the total over its workers. */
  threads?: number;
  device?: string;
  /**
   * Blocks as a pipeline across worker threads (block k on batch t while block k+1 on batch t−1): 'off' (default), 'auto' (workers and
   * their threads balanced on measured block costs) or a number of workers. An execution choice,
   * not part of the run's configuration: a resume may change it.
   */
  pipeline?: 'off' | 'auto' | number;
  /** Test hook: a pipeline worker throws or exits at this block and training step. */
  pipelineFault?: import('./pipeline/messages.js').InjectedFault;
  /** all | last:K | weighted | auto (weighted from scratch and with the head block, else last:4; all for ≤ 4 pretrained blocks). */
  ensemble?: string;
  /** chain | head | none | auto (chain from scratch, none for pretrained graphs). */
  norm?: NormPlacement | 'auto';
  /** Aux conv kernel size, or 'auto' (5 for J ≤ 10, else 3). */
  auxKernel?: number | 'auto';
  /** Average-pool each block output before its aux conv: off, a factor N, or auto (see sff/head.ts). */
  headPool?: HeadPoolSetting;
  /** auto | cuts | comma-separated cut tensors. */
  blocks?: string;
  /** Block names or indices to run forward only (their heads still train). */
  freeze?: string[];
  normalize?: string;
  /** Augmentation preset (none | flip | crop | rrc | rrc-light, see data/augment.ts); true = crop. */
  augment?: boolean | string;
  subset?: number;
  testData?: string;
  /** Input H×W (a number: square). Default: the graph's, else its metadata's, else the data's common size, else 224. */
  imageSize?: number | [number, number];
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
  /** Resume from the checkpoint in this folder (and keep writing there). */
  resume?: string;
  /** Start afresh in a non-empty or finished output folder, replacing what is there. */
  overwrite?: boolean;
  memArena?: boolean;
  cacheDir?: string;
  /** Stop each epoch after this many steps (quick runs and tests). */
  maxStepsPerEpoch?: number;
  /** Skip the export and its check. */
  noExport?: boolean;
  /** Which aux heads the exported model carries: those the ensemble uses (default) or all, each as a goodness output. */
  exportHeads?: ExportHeads;
  /** What the exported `scores` output holds: the weighted goodness (logits, default) or its softmax. */
  exportScores?: ExportScores;
  /** Storage type of the exported weights (float16 halves the file; computation stays float32). */
  exportDtype?: ExportDtype;
  /**
   * The library prints nothing unless asked: `quiet: false` writes the human log (see
   * ./reporter.ts) to stderr at `verbosity`. Events always reach `onEvent`.
   */
  quiet?: boolean;
  verbosity?: Verbosity;
  onEvent?: (e: FinetuneEvent) => void;
  /**
   * Aborting stops the run after the step in flight: the unfinished epoch is dropped, the last
   * finished epoch's checkpoint kept, the best epoch so far exported, and the result marked `interrupted`
   * (aborted while the graphs are still being built, it rejects with an AbortError).
   */
  signal?: AbortSignal;
}

export type { ExportHeads, ExportScores, ExportDtype, Method, RunConfig } from './runConfig.js';

export { OptionError } from './optionError.js';

export type { FinetuneEvent } from './events.js';

export type Verbosity = 'quiet' | 'normal' | 'verbose';

/** The training defaults, stated once (the data defaults live in `DATA_DEFAULTS`). */
export const TRAIN_DEFAULTS = {
  method: 'sff' as Method,
  epochs: 100,
  /**
   * AdamW learning rate from scratch, for a pretrained graph, and for a pretrained graph whose own
   * head runs as the last SFF block: there the head block starts at the network's classifier
   * (98.9% validation after 6 steps on Imagenette) and 3e-4 wore it down (96.4% after one epoch,
   * 97.6% at best in 3) while 3e-5 kept it (99.1%; README, Results).
   */
  lr: { fromScratch: 1e-3, pretrained: 3e-4, pretrainedHeadBlock: 3e-5 },
  /** Batch size for inputs up to 64 px, and above. */
  batchSize: { small: 128, large: 64 },
  weightDecay: 0,
  seed: 0,
  lrPatience: 10,
  stopPatience: 30,
} as const;

function defaultLr(fromScratch: boolean, headBlock: boolean): number {
  if (fromScratch) return TRAIN_DEFAULTS.lr.fromScratch;
  return headBlock ? TRAIN_DEFAULTS.lr.pretrainedHeadBlock : TRAIN_DEFAULTS.lr.pretrained;
}

/**
 * `--ensemble auto`. From scratch and with the network's own head as the last block: weights fitted
 * on the validation split, which start from the best single block. On CIFAR-10 CNNB (20 epochs, crop
 * and cosine) that was the last block alone, and it scored 2.1–3.1 points above the paper's plain
 * mean on held-out test images in five runs, since the weak first block (56–59%) drags the mean
 * down (README, Results). A pretrained body without its head, whose early blocks are weak (18% for
 * the stem of the shared MobileNetV3): the mean of the last four blocks, which measured best there
 * (95.8% against 95.7% weighted and 94.2% for all). Small pretrained graphs (≤ 4 blocks): the plain mean.
 */
function defaultEnsemble(fromScratch: boolean, blocks: number, headBlock: boolean): string {
  if (fromScratch || headBlock) return 'weighted';
  return blocks <= 4 ? 'all' : 'last:4';
}

function defaultBatchSize(imageSize: readonly number[]): number {
  return Math.max(...imageSize) <= 64 ? TRAIN_DEFAULTS.batchSize.small : TRAIN_DEFAULTS.batchSize.large;
}

function checkedBnMomentum(m: number): number {
  if (!(m > 0 && m <= 1)) throw new OptionError(`--bn-momentum must be in (0, 1] (PyTorch's convention: the weight of each new batch), got ${m}`);
  return m;
}

/** The model facts that the defaults depend on. */
export type ModelFacts = Pick<PreparedModel, 'imageSize' | 'fromScratch' | 'shortName' | 'normalize'> &
  Partial<Pick<PreparedModel, 'sourceDtype'>> & { blocks: readonly unknown[]; headBlock?: unknown; description?: string };

/** Whether pretrained graphs run their own head as a final block unless told otherwise (README, Results). */
const HEAD_BLOCK_BY_DEFAULT = true;

/** Validation and test shares of the training data: from --split, else --val-fraction and no test share. */
export function splitFractions(opts: FinetuneOptions): { valFraction: number; testFraction: number } {
  if (opts.split !== undefined) {
    if (opts.valFraction !== undefined) throw new OptionError('give either --split or --val-fraction, not both');
    try {
      return parseSplit(opts.split);
    } catch (e) {
      throw new OptionError((e as Error).message);
    }
  }
  return { valFraction: opts.valFraction ?? DATA_DEFAULTS.valFraction, testFraction: 0 };
}

function checkedAugment(v: boolean | string | undefined): AugmentPreset {
  try {
    return parseAugment(v);
  } catch (e) {
    throw new OptionError((e as Error).message);
  }
}

function checkedHeadInit(v: string | undefined): 'matched' | 'random' {
  if (v === undefined || v === 'matched' || v === 'random') return v ?? 'matched';
  throw new OptionError(`--head-init '${v}' is not known: use matched or random`);
}

function checkedSchedule(s: string | undefined): LrSchedule {
  if (s === undefined) return 'plateau';
  if (!(LR_SCHEDULES as readonly string[]).includes(s)) throw new OptionError(`--schedule '${s}' is not known: use ${LR_SCHEDULES.join(' or ')}`);
  return s as LrSchedule;
}

function checkedNonNegative(flag: string, v: number): number {
  if (!(v >= 0)) throw new OptionError(`${flag} must be ≥ 0, got ${v}`);
  return v;
}

function checkedSmoothing(eps: number): number {
  try {
    return checkLabelSmoothing(eps);
  } catch (e) {
    throw new OptionError((e as Error).message);
  }
}

function checkedPooledHeads(n: number, blocks: number): number {
  if (!(Number.isInteger(n) && n >= 0 && n <= blocks)) throw new OptionError(`--pooled-heads must be an integer from 0 to the number of blocks (${blocks}), got ${n}`);
  return n;
}

/** Resolves options against the model and the data's classes into the run's fixed configuration. */
export function resolveConfig(opts: FinetuneOptions, pm: ModelFacts, classes: string[]): RunConfig {
  const size = pm.imageSize;
  const sff = (opts.method ?? TRAIN_DEFAULTS.method) === 'sff';
  const headBlock = opts.headBlock === undefined || opts.headBlock === 'auto' ? sff && !pm.fromScratch && pm.headBlock !== undefined && HEAD_BLOCK_BY_DEFAULT : opts.headBlock;
  if (headBlock && !sff) throw new OptionError(`--head-block is an SFF option (the baselines train the network's own head already); drop it with --method ${opts.method}`);
  if (headBlock && pm.headBlock === undefined) throw new OptionError(`--head-block: this model's head has no learned layers before its classifier to run as a block (${pm.description ?? pm.shortName})`);
  const { valFraction, testFraction } = splitFractions(opts);
  return {
    method: opts.method ?? TRAIN_DEFAULTS.method,
    model: resolveInput(opts.model),
    data: resolveInput(opts.data),
    out: resolve(opts.out ?? defaultOut(pm.shortName)),
    epochs: opts.epochs ?? TRAIN_DEFAULTS.epochs,
    batchSize: opts.batchSize ?? defaultBatchSize(size),
    lr: opts.lr ?? defaultLr(pm.fromScratch, Boolean(headBlock)),
    weightDecay: opts.weightDecay ?? TRAIN_DEFAULTS.weightDecay,
    ...(opts.bnMomentum !== undefined ? { bnMomentum: checkedBnMomentum(opts.bnMomentum) } : {}),
    seed: opts.seed ?? TRAIN_DEFAULTS.seed,
    ensemble: formatEnsemble(parseEnsemble(!opts.ensemble || opts.ensemble === 'auto' ? defaultEnsemble(pm.fromScratch, pm.blocks.length, Boolean(headBlock)) : opts.ensemble)),
    norm: !opts.norm || opts.norm === 'auto' ? (pm.fromScratch ? 'chain' : 'none') : opts.norm,
    auxKernel: opts.auxKernel === undefined || opts.auxKernel === 'auto' ? defaultAuxKernel(classes.length) : opts.auxKernel,
    ...((opts.headPool ?? DEFAULT_HEAD_POOL) !== 'off' ? { headPool: opts.headPool ?? DEFAULT_HEAD_POOL } : {}),
    blocks: opts.blocks ?? 'auto',
    freeze: opts.freeze ?? [],
    normalize: opts.normalize ?? pm.normalize ?? DATA_DEFAULTS.normalize,
    augment: checkedAugment(opts.augment),
    ...(opts.subset ? { subset: opts.subset } : {}),
    ...(opts.testData ? { testData: resolveInput(opts.testData) } : {}),
    imageSize: size,
    valFraction,
    ...(testFraction > 0 ? { testFraction } : {}),
    headBlock,
    ...(headBlock ? { headInit: checkedHeadInit(opts.headInit) } : {}),
    pooledHeads: checkedPooledHeads(opts.pooledHeads ?? 0, pm.blocks.length),
    schedule: checkedSchedule(opts.schedule),
    warmup: checkedNonNegative('--warmup', opts.warmup ?? 0),
    labelSmoothing: checkedSmoothing(opts.labelSmoothing ?? 0),
    lrPatience: opts.lrPatience ?? TRAIN_DEFAULTS.lrPatience,
    stopPatience: opts.stopPatience ?? TRAIN_DEFAULTS.stopPatience,
    ...(opts.maxStepsPerEpoch ? { maxStepsPerEpoch: opts.maxStepsPerEpoch } : {}),
    classes,
    exportHeads: opts.exportHeads ?? 'ensemble',
    exportScores: opts.exportScores ?? 'logits',
    // The export stores weights in the source model's type unless told otherwise (a float16 model stays float16).
    exportDtype: opts.exportDtype ?? (pm.sourceDtype === 'float16' ? 'float16' : 'float32'),
  };
}

/** A resumed run keeps its configuration; only the number of epochs may be raised. */
/** The options of a resumed run: the checkpoint's configuration (see runFolder.ts `resumedConfig`) over what was given. */
export function resumedOptions(opts: FinetuneOptions, prior: RunConfig | undefined): FinetuneOptions {
  return prior ? { ...opts, ...prior, imageSize: prior.imageSize } : opts;
}

/** The default output folder of a model: its name made safe as a folder name (`...onnx` must not mean the working folder). */
export function defaultOut(shortName: string): string {
  return join('artifacts', safeFileName(shortName, 'model'));
}
