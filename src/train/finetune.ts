/**
 * The main job: SFF fine-tuning of an ONNX classifier (SPEC §1–4).
 * model → blocks → per-block train/eval graphs → epochs of local updates →
 * checkpoints → export → a check that the export reproduces training-time evaluation.
 */
import { mkdirSync, existsSync, writeFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import ort from 'onnxruntime-node';
import { batches, prepareData, type PreparedData } from '../data/index.js';
import { encodeModel, saveModel, writeFileAtomic } from '../onnx/io.js';
import { defaultAuxKernel } from '../sff/head.js';
import { classifierObjective, cwcObjective, linearProbe, sffObjective, type Objective } from '../sff/objective.js';
import { accuracy, combine, ensembleAccuracy, ensembleWeights, formatEnsemble, parseEnsemble, reportedRules } from '../sff/ensemble.js';
import { pooledLinearObjective } from '../sff/pooledLinear.js';
import { parseSplit } from '../data/split.js';
import { parseAugment, type AugmentPreset } from '../data/augment.js';
import { modelScores, testReport, type TestMetrics } from './testReport.js';
import { matchPretrainedClassifier, type MatchedClassifier } from './classifierInit.js';
import { ADAMW_DEFAULTS } from '../optim/adamw.js';
import { mixSeed } from '../util/rng.js';
import { blockLayout, buildEvalGraph, buildTrainStep, headPrefix } from './artifacts.js';
import { BlockRunner, type BlockWeights } from './runner.js';
import { createSession, type RuntimeOptions } from './session.js';
import { collectGoodness, type SplitGoodness } from './evaluate.js';
import { appendMetrics, goodnessLoss, peakRssMB, RunningMetrics, type EpochMetrics, type SplitMetrics } from './metrics.js';
import { EarlyStopping, LR_SCHEDULES, lrFactor, Plateau, type EarlyStopState, type LrSchedule, type PlateauState } from './schedule.js';
import { checkLabelSmoothing } from '../sff/smoothing.js';
import { readCheckpoint, writeCheckpoint } from './checkpoint.js';
import { accuracySvg, type Series } from './curves.js';
import { formatSeconds, Progress } from './progress.js';
import { bpBlock, prepareModel, type PreparedModel } from './model.js';
import { buildExportModel, type ExportBlock } from '../export/exportModel.js';
import { runningStatsWarning } from './batchnorm.js';
import { OptionError, type FinetuneOptions, type RunConfig } from './options.js';
import type { TrainBlock } from './block.js';

export const CHECKPOINT_FILE = 'checkpoint.sff';

/** Whether pretrained graphs run their own head as a final block unless told otherwise (measured: README, Results). */
const HEAD_BLOCK_BY_DEFAULT = true;

export class NonFiniteLossError extends Error {
  override name = 'NonFiniteLossError';
}

interface CheckpointHeader {
  version: 1;
  config: RunConfig;
  epoch: number;
  blocks: { name: string; step: number; plateau: PlateauState; state: string[] }[];
  stop: EarlyStopState;
  history: EpochMetrics[];
  bestEpoch: number;
}

export interface FinetuneResult {
  out: string;
  modelPath?: string;
  config: RunConfig;
  history: EpochMetrics[];
  best: EpochMetrics | undefined;
  exportCheck?: { maxAbsDiff: number; accuracy: number; trainingAccuracy: number; scale: number };
  blocks: { name: string; params: number; headParams: number; frozen: boolean }[];
  peakRssMB: number;
  /** Trainable parameters, aux heads (and CwC-mod's linear probe) included. */
  trainableParams: number;
  stoppedEarly: boolean;
  /** Accuracy on the held-out test split (--split with a test share, or --test DIR), computed once at the end. */
  test?: TestMetrics;
}

function defaultLr(pm: PreparedModel): number {
  return pm.fromScratch ? 1e-3 : 3e-4;
}

function checkedBnMomentum(m: number): number {
  if (!(m > 0 && m <= 1)) throw new OptionError(`--bn-momentum must be in (0, 1] (PyTorch's convention: the weight of each new batch), got ${m}`);
  return m;
}

/** Validation and test shares of the training data: from --split, else --val-fraction and no test share. */
function splitFractions(opts: FinetuneOptions): { valFraction: number; testFraction: number } {
  if (opts.split !== undefined) {
    if (opts.valFraction !== undefined) throw new OptionError('give either --split or --val-fraction, not both');
    return parseSplit(opts.split);
  }
  return { valFraction: opts.valFraction ?? 0.2, testFraction: 0 };
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

/** Resolves options against the model and data into the run's fixed configuration. */
function resolveConfig(opts: FinetuneOptions, pm: PreparedModel, data: PreparedData): RunConfig {
  const sff = (opts.method ?? 'sff') === 'sff';
  const headBlock = opts.headBlock === undefined || opts.headBlock === 'auto' ? sff && !pm.fromScratch && pm.headBlock !== undefined && HEAD_BLOCK_BY_DEFAULT : opts.headBlock;
  if (headBlock && !sff) throw new OptionError(`--head-block is an SFF option (the baselines train the network's own head already); drop it with --method ${opts.method}`);
  if (headBlock && !pm.headBlock) throw new OptionError(`--head-block: this model's head has no layers before its classifier to run as a block (${pm.description})`);
  const { valFraction, testFraction } = splitFractions(opts);
  const size = pm.imageSize;
  const classes = data.classes;
  return {
    method: opts.method ?? 'sff',
    model: opts.model,
    data: opts.data,
    out: resolve(opts.out ?? join('artifacts', pm.shortName)),
    epochs: opts.epochs ?? 100,
    batchSize: opts.batchSize ?? (Math.max(...size) <= 64 ? 128 : 64),
    lr: opts.lr ?? defaultLr(pm),
    weightDecay: opts.weightDecay ?? 0,
    ...(opts.bnMomentum !== undefined ? { bnMomentum: checkedBnMomentum(opts.bnMomentum) } : {}),
    seed: opts.seed ?? 0,
    // auto: the paper's plain mean from scratch; for a pretrained graph, whose early blocks are
    // weak (18% for the stem of the shared MobileNetV3), the mean of the last four blocks, which
    // measured best there (README, Results) — or, with the network's own head as the last block,
    // weights fitted on the validation split (which start from the best single block).
    ensemble: formatEnsemble(parseEnsemble(!opts.ensemble || opts.ensemble === 'auto' ? (pm.fromScratch || pm.blocks.length <= 4 ? 'all' : headBlock ? 'weighted' : 'last:4') : opts.ensemble)),
    norm: !opts.norm || opts.norm === 'auto' ? (pm.fromScratch ? 'chain' : 'none') : opts.norm,
    auxKernel: opts.auxKernel === undefined || opts.auxKernel === 'auto' ? defaultAuxKernel(classes.length) : opts.auxKernel,
    blocks: opts.blocks ?? 'auto',
    freeze: opts.freeze ?? [],
    normalize: opts.normalize ?? pm.normalize ?? 'imagenet',
    augment: checkedAugment(opts.augment),
    ...(opts.subset ? { subset: opts.subset } : {}),
    ...(opts.testData ? { testData: opts.testData } : {}),
    imageSize: size,
    valFraction,
    ...(testFraction > 0 ? { testFraction } : {}),
    headBlock,
    ...(headBlock ? { headInit: checkedHeadInit(opts.headInit) } : {}),
    pooledHeads: checkedPooledHeads(opts.pooledHeads ?? 0, pm.blocks.length),
    schedule: checkedSchedule(opts.schedule),
    warmup: checkedNonNegative('--warmup', opts.warmup ?? 0),
    labelSmoothing: checkedSmoothing(opts.labelSmoothing ?? 0),
    lrPatience: opts.lrPatience ?? 10,
    stopPatience: opts.stopPatience ?? 30,
    ...(opts.maxStepsPerEpoch ? { maxStepsPerEpoch: opts.maxStepsPerEpoch } : {}),
    classes,
  };
}

function isFrozen(cfg: RunConfig, block: TrainBlock): boolean {
  return cfg.freeze.some((f) => f === block.name || f === String(block.index));
}

interface Trainer {
  block: TrainBlock;
  objective: Objective;
  /** 'layer' blocks form the "layers" ensemble; a 'probe' (CwC-mod's linear head) is reported apart. */
  role: 'layer' | 'probe';
  runner: BlockRunner;
  plateau: Plateau;
  headParamCount: number;
  seconds: number;
}

export interface Stage {
  block: TrainBlock;
  objective: Objective;
  role: 'layer' | 'probe';
}

/** What is trained, block by block, for each method (SPEC §2, §5). */
export function planStages(pm: PreparedModel, cfg: RunConfig, headInit?: MatchedClassifier): Stage[] {
  const J = cfg.classes.length;
  if (cfg.method === 'bp') return [{ block: bpBlock(pm, J, cfg.seed), objective: classifierObjective(), role: 'layer' }];
  const pooledFrom = pm.blocks.length - (cfg.pooledHeads ?? 0);
  const body = cfg.method === 'sff' && cfg.headBlock && pm.headBlock ? [...pm.blocks, pm.headBlock] : pm.blocks;
  const stages: Stage[] = body.map((original) => {
    // A frozen block keeps its weights; only its head learns (no gradient crosses the block).
    const block: TrainBlock = isFrozen(cfg, original) ? { ...original, trainable: [] } : original;
    const seed = mixSeed(cfg.seed, block.index, 0x5ff);
    const objective =
      cfg.method === 'cwc'
        ? cwcObjective(block.outputShape[0]!, J)
        : original === pm.headBlock || block.index >= pooledFrom
          ? pooledLinearObjective({ outputShape: block.outputShape, classes: J, seed, ...(original === pm.headBlock && headInit ? { init: headInit } : {}) }, headPrefix(block))
          : sffObjective({ channels: block.outputShape[0]!, classes: J, kernel: cfg.auxKernel, norm: cfg.norm, seed }, headPrefix(block));
    return { block, objective, role: 'layer' as const };
  });
  if (cfg.method === 'cwc') {
    const last = stages.at(-1)!.block;
    const probe: TrainBlock = { ...last, index: last.index + 1, name: 'head', input: last.output, nodes: [], constants: new Map(), trainable: [], state: [], inputShape: last.outputShape };
    const features = last.outputShape.reduce((a, d) => a * d, 1);
    stages.push({ block: probe, objective: linearProbe(features, J, mixSeed(cfg.seed, 0x11ea4), 'cwc.head'), role: 'probe' });
  }
  return stages;
}

async function buildTrainers(pm: PreparedModel, cfg: RunConfig, rt: RuntimeOptions, log: (s: string) => void, headInit?: MatchedClassifier): Promise<Trainer[]> {
  const dir = join(cfg.out, 'blocks');
  mkdirSync(dir, { recursive: true });
  const trainers: Trainer[] = [];
  const J = cfg.classes.length;
  for (const { block, objective, role } of planStages(pm, cfg, headInit)) {
    const hp = objective.params;
    const layout = blockLayout(block, hp);
    const init = layout.pack((name) => {
      const h = hp.find((p) => p.name === name);
      if (h) return h.init;
      return new Float32Array(block.constants.get(name)!.raw.slice().buffer);
    });
    const t0 = performance.now();
    const train = await buildTrainStep({ block, objective, classes: J, batchSize: cfg.batchSize, adamw: { ...ADAMW_DEFAULTS, weightDecay: cfg.weightDecay }, labelSmoothing: cfg.labelSmoothing ?? 0, ...(cfg.bnMomentum !== undefined ? { bnMomentum: cfg.bnMomentum } : {}) }, layout);
    const evalModel = buildEvalGraph(block, objective, layout, J);
    const trainBytes = encodeModel(train);
    const evalBytes = encodeModel(evalModel);
    writeFileAtomic(join(dir, `block${block.index}_${block.name}.train.onnx`), trainBytes);
    writeFileAtomic(join(dir, `block${block.index}_${block.name}.eval.onnx`), evalBytes);
    const sessions = { train: await createSession(trainBytes, rt), eval: await createSession(evalBytes, rt) };
    const stateDims = new Map(block.state.map((s) => [s, block.constants.get(s)!.dims]));
    const state = new Map(block.state.map((s) => [s, { data: new Float32Array(block.constants.get(s)!.raw.slice().buffer), dims: block.constants.get(s)!.dims }]));
    const runner = new BlockRunner(block.name, layout, { params: init, state }, sessions, stateDims, cfg.lr);
    const headParamCount = hp.reduce((a, p) => a + p.init.length, 0);
    log(
      `  block ${block.index} ${block.name.padEnd(12)} out ${block.outputShape.join('×').padEnd(12)} params ${String(layout.total - headParamCount).padStart(9)} + head ${headParamCount}` +
        `${isFrozen(cfg, block) ? ' (frozen)' : ''}${role === 'probe' ? ' (linear head on the detached last block)' : ''}  graphs built in ${((performance.now() - t0) / 1000).toFixed(1)}s`,
    );
    trainers.push({ block, objective, role, runner, plateau: Plateau.start(cfg.lr, cfg.lrPatience), headParamCount, seconds: 0 });
  }
  return trainers;
}

function splitMetrics(sg: SplitGoodness, J: number): SplitMetrics {
  return {
    loss: sg.goodness.map((g) => goodnessLoss(g, sg.labels, J)),
    acc: sg.goodness.map((g) => accuracy(g, sg.labels, J)),
    layers: {},
  };
}

function weightsOfAll(trainers: Trainer[]): BlockWeights[] {
  return trainers.map((t) => t.runner.weights());
}

function saveCheckpoint(cfg: RunConfig, trainers: Trainer[], epoch: number, stop: EarlyStopping, history: EpochMetrics[], best: { epoch: number; states: BlockWeights[] }): void {
  const arrays: Record<string, Float32Array> = {};
  const header: CheckpointHeader = {
    version: 1,
    config: cfg,
    epoch,
    blocks: trainers.map((t, k) => {
      const s = t.runner.snapshot();
      arrays[`b${k}.params`] = s.params;
      arrays[`b${k}.m`] = s.m;
      arrays[`b${k}.v`] = s.v;
      for (const [name, d] of Object.entries(s.state)) arrays[`b${k}.state.${name}`] = d;
      const bs = best.states[k]!;
      arrays[`b${k}.best.params`] = bs.params;
      for (const [name, d] of Object.entries(bs.state)) arrays[`b${k}.best.state.${name}`] = d;
      return { name: t.block.name, step: s.step, plateau: { ...t.plateau.state }, state: Object.keys(s.state) };
    }),
    stop: { ...stop.state },
    history,
    bestEpoch: best.epoch,
  };
  writeCheckpoint(join(cfg.out, CHECKPOINT_FILE), { header, arrays });
}

function ensembleReport(sg: SplitGoodness, J: number, cfgRule: string): { layers: Record<string, number>; weights: number[]; acc: number } {
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

function pct(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}

export async function finetune(opts: FinetuneOptions): Promise<FinetuneResult> {
  const emit = opts.onEvent ?? (() => {});
  const log = (message: string) => {
    if (!opts.quiet) console.log(message);
    emit({ type: 'log', message });
  };
  const resumed = opts.resume ? readCheckpoint<CheckpointHeader>(join(opts.resume, CHECKPOINT_FILE)) : undefined;
  const prior = resumed?.header.config;
  // A resumed run keeps its configuration; only the number of epochs may be raised.
  const o: FinetuneOptions = prior ? { ...opts, ...prior, imageSize: prior.imageSize[0], epochs: opts.epochs ?? prior.epochs } : opts;
  const rt: RuntimeOptions = { device: opts.device, threads: opts.threads, memArena: opts.memArena };

  const pm = await prepareModel(o.model, { blocks: o.blocks ?? 'auto', imageSize: o.imageSize ?? prior?.imageSize[0] });
  log(`model  ${pm.description}`);
  const fractions = prior ? { valFraction: prior.valFraction, testFraction: prior.testFraction ?? 0 } : splitFractions(o);
  const data = await prepareData({
    path: o.data,
    imageSize: pm.imageSize,
    channels: pm.inputShape[0]!,
    normalize: o.normalize ?? pm.normalize ?? 'imagenet',
    seed: o.seed ?? 0,
    ...fractions,
    ...(o.subset ? { subset: o.subset } : {}),
    ...(o.testData ? { testPath: o.testData } : {}),
    ...(opts.cacheDir ? { cacheDir: opts.cacheDir } : {}),
    ...(prior ? { expectClasses: prior.classes } : {}),
  });
  log(`data   ${data.source}${data.skipped.length ? `; ${data.skipped.length} unreadable images skipped` : ''}`);
  for (const s of data.skipped.slice(0, 5)) log(`       skipped ${s.path}: ${s.reason}`);
  const cfg = prior ?? resolveConfig(o, pm, data);
  if (prior) cfg.epochs = o.epochs ?? prior.epochs;
  if (data.train.count < cfg.batchSize)
    throw new Error(`the training split has ${data.train.count} images, fewer than one batch of ${cfg.batchSize}: lower --batch-size`);
  mkdirSync(cfg.out, { recursive: true });
  const J = cfg.classes.length;
  log(`run    ${cfg.out}  (${cfg.method}, norm ${cfg.norm}, aux ${cfg.auxKernel}×${cfg.auxKernel}, lr ${cfg.lr}, batch ${cfg.batchSize}, ensemble ${cfg.ensemble}, seed ${cfg.seed})`);

  const fullSteps = Math.floor(data.train.count / cfg.batchSize);
  const steps = Math.min(fullSteps, cfg.maxStepsPerEpoch ?? Infinity);
  const bnWarning = runningStatsWarning({ blocks: pm.blocks, fromScratch: pm.fromScratch, ...(cfg.bnMomentum !== undefined ? { bnMomentum: cfg.bnMomentum } : {}), totalSteps: steps * cfg.epochs });
  if (bnWarning) log(`warning: ${bnWarning}`);

  let headInit: MatchedClassifier | undefined;
  if (cfg.method === 'sff' && cfg.headBlock && (cfg.headInit ?? 'random') === 'matched' && !resumed) {
    headInit = await matchPretrainedClassifier(pm, data.train, J, data.preprocess, rt);
    log(
      headInit
        ? `head   J-way map starts from the pretrained classifier's rows, matched on ${headInit.images} training images: ${cfg.classes.map((c, j) => `${c}→${headInit!.source[j]} (${pct(headInit!.meanProb[j]!)})`).join(', ')}`
        : "head   the pretrained classifier cannot start the J-way map (not a linear map on the head block's output): random start",
    );
  }
  const trainers = await buildTrainers(pm, cfg, rt, log, headInit);
  const stop = new EarlyStopping(undefined, cfg.stopPatience);
  let history: EpochMetrics[] = [];
  let startEpoch = 0;
  let best = { epoch: -1, states: weightsOfAll(trainers) };
  const metricsPath = join(cfg.out, 'metrics.jsonl');
  if (resumed) {
    const h = resumed.header;
    trainers.forEach((t, k) => {
      const hb = h.blocks[k]!;
      const state: Record<string, Float32Array> = {};
      const bestState: Record<string, Float32Array> = {};
      for (const s of hb.state) {
        state[s] = resumed.arrays[`b${k}.state.${s}`]!;
        bestState[s] = resumed.arrays[`b${k}.best.state.${s}`]!;
      }
      t.runner.restore({ params: resumed.arrays[`b${k}.params`]!, m: resumed.arrays[`b${k}.m`]!, v: resumed.arrays[`b${k}.v`]!, state, step: hb.step });
      t.plateau.state = { ...hb.plateau };
      t.runner.lr = hb.plateau.lr;
      best.states[k] = { params: resumed.arrays[`b${k}.best.params`]!, state: bestState };
    });
    stop.state = { ...h.stop };
    history = h.history;
    best.epoch = h.bestEpoch;
    startEpoch = h.epoch + 1;
    // Drop metric lines of epochs after the checkpoint (a run killed mid-epoch may have written none, but be exact).
    writeFileSync(metricsPath, history.map((m) => JSON.stringify(m) + '\n').join(''));
    log(`resume from epoch ${h.epoch + 1} (checkpoint in ${cfg.out})`);
  } else if (existsSync(metricsPath)) rmSync(metricsPath);

  const mean = data.preprocess.mean;
  const std = data.preprocess.std;
  const dims = [data.train.channels, data.train.height, data.train.width];
  const perSample = dims[0]! * dims[1]! * dims[2]!;
  const progress = new Progress();
  let stoppedEarly = false;
  const layerIdx = trainers.flatMap((t, k) => (t.role === 'layer' ? [k] : []));
  const probeIdx = trainers.findIndex((t) => t.role === 'probe');
  const trainableParams = trainers.reduce((a, t) => a + t.runner.layout.total, 0); // frozen blocks' layouts hold only their heads

  for (let epoch = startEpoch; epoch < cfg.epochs; epoch++) {
    const t0 = performance.now();
    const running = new RunningMetrics(trainers.length, J, cfg.batchSize);
    trainers.forEach((t) => (t.seconds = 0));
    progress.begin();
    let step = 0;
    const it = batches(data.train, { batchSize: cfg.batchSize, shuffle: true, seed: cfg.seed, epoch, augment: cfg.augment, dropLast: true, mean, std });
    for await (const batch of it) {
      if (step >= steps) break;
      const labels = new ort.Tensor('int64', batch.y.subarray(0, batch.n), [batch.n]);
      const labelNums = Array.from(batch.y.subarray(0, batch.n), Number);
      let x: ort.Tensor = new ort.Tensor('float32', batch.x.subarray(0, batch.n * perSample), [batch.n, ...dims]);
      const losses: number[] = [];
      const factor = lrFactor(cfg.schedule ?? 'plateau', epoch * steps + step, cfg.epochs * steps, Math.round((cfg.warmup ?? 0) * steps));
      for (let k = 0; k < trainers.length; k++) {
        const t = trainers[k]!;
        t.runner.lr = t.plateau.state.lr * factor;
        const ts = performance.now();
        const r = await t.runner.trainStep(x, labels);
        t.seconds += (performance.now() - ts) / 1000;
        if (!Number.isFinite(r.loss))
          throw new NonFiniteLossError(
            `block ${t.block.index} (${t.block.name}) produced a non-finite loss (${r.loss}) at epoch ${epoch + 1}, step ${step + 1}. ` +
              `The last good checkpoint (${history.length ? `epoch ${history.length}` : 'none yet'}) is kept in ${cfg.out}. Try a lower --lr (now ${t.runner.lr}).`,
          );
        running.addBlock(k, r.loss, r.goodness, labelNums, t.role === 'layer');
        losses.push(r.loss);
        x = r.next;
      }
      running.endBatch(labelNums);
      step++;
      emit({ type: 'step', epoch, step, steps, losses });
      progress.update(`epoch ${epoch + 1}/${cfg.epochs}`, step, steps, step * cfg.batchSize, `loss ${losses.at(-1)!.toFixed(3)}`);
    }
    const trainSeconds = (performance.now() - t0) / 1000;
    const val = await collectGoodness(trainers.map((t) => t.runner), data.val, { batchSize: cfg.batchSize, classes: J, mean, std });
    progress.end();
    const valMetrics = splitMetrics(val, J);
    const ens = ensembleReport({ labels: val.labels, goodness: layerIdx.map((k) => val.goodness[k]!) }, J, cfg.ensemble);
    valMetrics.layers = ens.layers;
    if (probeIdx >= 0) valMetrics.layers.head = valMetrics.acc[probeIdx]!;
    const weights = trainers.map((t, k) => (t.role === 'layer' ? ens.weights[layerIdx.indexOf(k)]! : 0));
    // The plateau rule lowers each block's base rate between epochs; a cosine run follows its curve alone.
    const lrs = trainers.map((t, k) => ((cfg.schedule ?? 'plateau') === 'plateau' ? t.plateau.observe(valMetrics.loss[k]!) : t.runner.lr));
    const seconds = (performance.now() - t0) / 1000;
    const m: EpochMetrics = {
      epoch: epoch + 1,
      train: running.result(),
      val: valMetrics,
      ensemble: { rule: cfg.ensemble, weights, acc: ens.acc },
      lr: lrs,
      seconds,
      trainSeconds,
      steps,
      stepSeconds: trainSeconds / Math.max(steps, 1),
      trainableParams,
      imagesPerSecond: (steps * cfg.batchSize) / trainSeconds,
      blockImagesPerSecond: trainers.map((t) => (steps * cfg.batchSize) / Math.max(t.seconds, 1e-9)),
      peakRssMB: peakRssMB(),
    };
    history.push(m);
    const halt = stop.observe(ens.acc, epoch);
    if (stop.state.bestEpoch === epoch) best = { epoch, states: weightsOfAll(trainers) };
    appendMetrics(metricsPath, m);
    saveCheckpoint(cfg, trainers, epoch, stop, history, best);
    writeFileAtomic(join(cfg.out, 'curves.svg'), curves(history, trainers));
    emit({ type: 'epoch', metrics: m });
    log(
      `epoch ${String(epoch + 1).padStart(3)}/${cfg.epochs}  train loss ${mean0(m.train.loss).toFixed(3)} layers ${pct(m.train.layers.all!)}  ` +
        `val layers ${Object.entries(ens.layers).map(([k, v]) => `${k} ${pct(v)}`).join(', ')}  ` +
        `blocks ${m.val.acc.map(pct).join(' ')}  ${m.imagesPerSecond.toFixed(0)} img/s  ${formatSeconds(seconds)}`,
    );
    if (halt) {
      stoppedEarly = true;
      log(`early stop: validation accuracy has not improved for ${cfg.stopPatience} epochs (best ${pct(stop.state.best)} at epoch ${stop.state.bestEpoch + 1})`);
      break;
    }
  }

  const bestMetrics = best.epoch >= 0 ? history[best.epoch] : history.at(-1);
  const result: FinetuneResult = {
    out: cfg.out,
    config: cfg,
    history,
    best: bestMetrics,
    blocks: trainers.map((t) => ({ name: t.block.name, params: t.runner.layout.total - t.headParamCount, headParams: t.headParamCount, frozen: isFrozen(cfg, t.block) })),
    peakRssMB: peakRssMB(),
    trainableParams,
    stoppedEarly,
  };
  // Export (and test) the best validation epoch's weights.
  if (history.length) trainers.forEach((t, k) => t.runner.setWeights(best.states[k]!));
  let exported: import('../ir/graph.js').Model | undefined;
  let valGoodness: SplitGoodness | undefined; // the exported weights' validation goodness, computed once
  if (!opts.noExport && history.length) {
    const modelPath = join(cfg.out, 'model.onnx');
    const weights = bestMetrics!.ensemble.weights;
    exported = buildExportModel({
      inputName: pm.inputName,
      inputShape: pm.inputShape,
      blocks: trainers.map((t): ExportBlock => ({ block: t.block, objective: t.objective, layout: t.runner.layout, params: t.runner.currentParams(), state: t.runner.currentState() })),
      weights,
      classes: cfg.classes,
      preprocess: { size: cfg.imageSize, mean: [...mean], std: [...std] },
      extraMetadata: { 'sff.ensemble': cfg.ensemble, 'sff.source': pm.description },
    });
    saveModel(exported, modelPath);
    result.modelPath = modelPath;
    const { reference, ...check } = await checkExport(exported, trainers, data, cfg, weights, pm.inputName, rt);
    result.exportCheck = check;
    valGoodness = reference;
    log(
      `${result.exportCheck.maxAbsDiff <= 1e-3 * Math.max(1, result.exportCheck.scale) ? '✓' : '✗'} exported model reproduces training-time evaluation ` +
        `(max abs diff ${result.exportCheck.maxAbsDiff.toExponential(1)}, accuracy ${pct(result.exportCheck.accuracy)})`,
    );
  }
  if (data.test && history.length) {
    const session = exported ? await createSession(exported, rt) : undefined;
    result.test = await testReport({
      runners: trainers.map((t) => t.runner),
      layerIdx,
      val: data.val,
      test: data.test,
      source: data.source,
      classes: J,
      batchSize: cfg.batchSize,
      mean: [...mean],
      std: [...std],
      rule: cfg.ensemble,
      weights: bestMetrics!.ensemble.weights,
      ...(valGoodness ? { valGoodness } : {}),
      ...(session ? { exported: { session, inputName: pm.inputName } } : {}),
    });
    await session?.release();
  }
  writeSummary(result);
  summarise(result, trainers, log);
  await Promise.all(trainers.map((t) => t.runner.release()));
  return result;
}

function mean0(a: number[]): number {
  return a.reduce((s, x) => s + x, 0) / Math.max(a.length, 1);
}

function curves(history: EpochMetrics[], trainers: Trainer[]): string {
  const series: Series[] = trainers.map((t, k) => ({ name: `${t.block.index} ${t.block.name}`, values: history.map((m) => m.val.acc[k]!) }));
  series.push({ name: `layers (${history[0]!.ensemble.rule})`, values: history.map((m) => m.ensemble.acc), emphasis: true });
  return accuracySvg(series, 'SFF validation accuracy per block and ensemble');
}

/** Runs the exported model on the validation split and compares with the training-time ensemble. */
async function checkExport(
  model: import('../ir/graph.js').Model,
  trainers: Trainer[],
  data: PreparedData,
  cfg: RunConfig,
  weights: number[],
  inputName: string,
  rt: RuntimeOptions,
): Promise<{ maxAbsDiff: number; accuracy: number; trainingAccuracy: number; scale: number; reference: SplitGoodness }> {
  const J = cfg.classes.length;
  const reference = await collectGoodness(trainers.map((t) => t.runner), data.val, { batchSize: cfg.batchSize, classes: J, mean: data.preprocess.mean, std: data.preprocess.std });
  const refScores = combine(reference.goodness, weights);
  const session = await createSession(model, rt);
  const scores = await modelScores(session, inputName, data.val, { classes: J, batchSize: cfg.batchSize, mean: data.preprocess.mean, std: data.preprocess.std });
  await session.release();
  let maxAbsDiff = 0;
  let scale = 0;
  for (let i = 0; i < scores.length; i++) {
    maxAbsDiff = Math.max(maxAbsDiff, Math.abs(scores[i]! - refScores[i]!));
    scale = Math.max(scale, Math.abs(refScores[i]!));
  }
  return { maxAbsDiff, accuracy: accuracy(scores, reference.labels, J), trainingAccuracy: accuracy(refScores, reference.labels, J), scale, reference };
}

function summarise(r: FinetuneResult, trainers: Trainer[], log: (s: string) => void): void {
  const b = r.best;
  if (!b) return;
  log(`\nbest epoch ${b.epoch} of ${r.history.length}${r.stoppedEarly ? ' (early stop)' : ''}: validation "layers" accuracy ${pct(b.ensemble.acc)} (${b.ensemble.rule})`);
  log('  block          params    val acc   val loss   train img/s');
  trainers.forEach((t, k) =>
    log(
      `  ${`${t.block.index} ${t.block.name}`.padEnd(14)} ${String(r.blocks[k]!.params + r.blocks[k]!.headParams).padStart(9)}  ${pct(b.val.acc[k]!).padStart(7)}  ${b.val.loss[k]!.toFixed(4).padStart(9)}  ${b.blockImagesPerSecond[k]!.toFixed(0).padStart(11)}`,
    ),
  );
  const last = r.history.at(-1)!;
  log(`  ensembles: ${Object.entries(b.val.layers).map(([k, v]) => `${k} ${pct(v)}`).join(', ')}`);
  log(`  throughput ${last.imagesPerSecond.toFixed(0)} img/s overall, peak memory ${r.peakRssMB.toFixed(0)} MB`);
  log(`  time per epoch ${formatSeconds(last.seconds)} (training ${formatSeconds(last.trainSeconds)}, ${(last.stepSeconds * 1000).toFixed(0)} ms/step), trainable params ${r.trainableParams.toLocaleString('en-US')} (aux heads included)`);
  const t = r.test;
  if (t) {
    log(`  test (${t.count} images, never used for any choice): "layers" ${pct(t.ensemble.acc)} (${t.ensemble.rule})${t.exported !== undefined ? `, exported model ${pct(t.exported)}` : ''}`);
    log(`    ensembles (weights fitted on validation): ${Object.entries(t.layers).map(([k, v]) => `${k} ${pct(v)}`).join(', ')}`);
    log(`    blocks ${t.acc.map(pct).join(' ')}`);
  }
  if (r.modelPath) log(`model written to ${r.modelPath}`);
}

/** summary.json: the run's configuration, its best validation epoch and its test accuracy, for tables and scripts. */
function writeSummary(r: FinetuneResult): void {
  const b = r.best;
  const summary = {
    config: r.config,
    epochs: r.history.length,
    bestEpoch: b?.epoch,
    val: b ? { ensemble: b.ensemble, layers: b.val.layers, acc: b.val.acc } : undefined,
    test: r.test,
    exportCheck: r.exportCheck,
    blocks: r.blocks,
    trainableParams: r.trainableParams,
    seconds: r.history.reduce((a, m) => a + m.seconds, 0),
  };
  writeFileAtomic(join(r.out, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
}
