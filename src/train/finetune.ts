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
import { accuracy, combine, ensembleAccuracy, ensembleWeights, formatEnsemble, parseEnsemble } from '../sff/ensemble.js';
import { ADAMW_DEFAULTS } from '../optim/adamw.js';
import { mixSeed } from '../util/rng.js';
import { blockLayout, buildEvalGraph, buildTrainStep, headPrefix } from './artifacts.js';
import { BlockRunner, type BlockState, type BlockWeights } from './runner.js';
import { SerialExecutor, type BatchResult, type BlockExecutor } from './executor.js';
import { pipelineWorkers, startPipeline } from './pipeline/executor.js';
import type { WorkerBlock } from './pipeline/messages.js';
import { toWorkerBlock } from './pipeline/blocks.js';
import type { ParamLayout } from './params.js';
import { createSession, type RuntimeOptions } from './session.js';
import type { SplitGoodness } from './evaluate.js';
import { appendMetrics, goodnessLoss, peakRssMB, RunningMetrics, type EpochMetrics, type SplitMetrics } from './metrics.js';
import { EarlyStopping, Plateau, type EarlyStopState, type PlateauState } from './schedule.js';
import { readCheckpoint, writeCheckpoint } from './checkpoint.js';
import { accuracySvg, type Series } from './curves.js';
import { formatSeconds, Progress } from './progress.js';
import { bpBlock, prepareModel, type PreparedModel } from './model.js';
import { buildExportModel, type ExportBlock } from '../export/exportModel.js';
import { runningStatsWarning } from './batchnorm.js';
import { OptionError, type FinetuneEvent, type FinetuneOptions, type RunConfig } from './options.js';
import type { TrainBlock } from './block.js';

export const CHECKPOINT_FILE = 'checkpoint.sff';

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
}

function defaultLr(pm: PreparedModel): number {
  return pm.fromScratch ? 1e-3 : 3e-4;
}

function checkedBnMomentum(m: number): number {
  if (!(m > 0 && m <= 1)) throw new OptionError(`--bn-momentum must be in (0, 1] (PyTorch's convention: the weight of each new batch), got ${m}`);
  return m;
}

/** Resolves options against the model and data into the run's fixed configuration. */
function resolveConfig(opts: FinetuneOptions, pm: PreparedModel, data: PreparedData): RunConfig {
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
    // measured best there (README, Results).
    ensemble: formatEnsemble(parseEnsemble(!opts.ensemble || opts.ensemble === 'auto' ? (pm.fromScratch || pm.blocks.length <= 4 ? 'all' : 'last:4') : opts.ensemble)),
    norm: !opts.norm || opts.norm === 'auto' ? (pm.fromScratch ? 'chain' : 'none') : opts.norm,
    auxKernel: opts.auxKernel === undefined || opts.auxKernel === 'auto' ? defaultAuxKernel(classes.length) : opts.auxKernel,
    blocks: opts.blocks ?? 'auto',
    freeze: opts.freeze ?? [],
    normalize: opts.normalize ?? pm.normalize ?? 'imagenet',
    augment: opts.augment ?? false,
    ...(opts.subset ? { subset: opts.subset } : {}),
    ...(opts.testData ? { testData: opts.testData } : {}),
    imageSize: size,
    valFraction: opts.valFraction ?? 0.2,
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
  layout: ParamLayout;
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
export function planStages(pm: PreparedModel, cfg: RunConfig): Stage[] {
  const J = cfg.classes.length;
  if (cfg.method === 'bp') return [{ block: bpBlock(pm, J, cfg.seed), objective: classifierObjective(), role: 'layer' }];
  const stages: Stage[] = pm.blocks.map((original) => {
    // A frozen block keeps its weights; only its head learns (no gradient crosses the block).
    const block: TrainBlock = isFrozen(cfg, original) ? { ...original, trainable: [] } : original;
    const objective =
      cfg.method === 'cwc'
        ? cwcObjective(block.outputShape[0]!, J)
        : sffObjective({ channels: block.outputShape[0]!, classes: J, kernel: cfg.auxKernel, norm: cfg.norm, seed: mixSeed(cfg.seed, block.index, 0x5ff) }, headPrefix(block));
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

/**
 * Builds every block's graphs. Serial runs get their BlockRunners (sessions on this thread);
 * pipelined runs get the blocks as worker threads rebuild them (`sessions: false`).
 */
async function buildTrainers(
  pm: PreparedModel,
  cfg: RunConfig,
  rt: RuntimeOptions,
  log: (s: string) => void,
  sessions: boolean,
): Promise<{ trainers: Trainer[]; runners: BlockRunner[]; workerBlocks: WorkerBlock[] }> {
  const dir = join(cfg.out, 'blocks');
  mkdirSync(dir, { recursive: true });
  const trainers: Trainer[] = [];
  const runners: BlockRunner[] = [];
  const workerBlocks: WorkerBlock[] = [];
  const J = cfg.classes.length;
  for (const { block, objective, role } of planStages(pm, cfg)) {
    const hp = objective.params;
    const layout = blockLayout(block, hp);
    const init = layout.pack((name) => {
      const h = hp.find((p) => p.name === name);
      if (h) return h.init;
      return new Float32Array(block.constants.get(name)!.raw.slice().buffer);
    });
    const t0 = performance.now();
    const train = await buildTrainStep({ block, objective, classes: J, batchSize: cfg.batchSize, adamw: { ...ADAMW_DEFAULTS, weightDecay: cfg.weightDecay }, ...(cfg.bnMomentum !== undefined ? { bnMomentum: cfg.bnMomentum } : {}) }, layout);
    const evalModel = buildEvalGraph(block, objective, layout, J);
    const trainBytes = encodeModel(train);
    const evalBytes = encodeModel(evalModel);
    writeFileAtomic(join(dir, `block${block.index}_${block.name}.train.onnx`), trainBytes);
    writeFileAtomic(join(dir, `block${block.index}_${block.name}.eval.onnx`), evalBytes);
    const stateDims = new Map(block.state.map((s) => [s, block.constants.get(s)!.dims]));
    const state = new Map(block.state.map((s) => [s, { data: new Float32Array(block.constants.get(s)!.raw.slice().buffer), dims: block.constants.get(s)!.dims }]));
    if (sessions) {
      const blockSessions = { train: await createSession(trainBytes, rt), eval: await createSession(evalBytes, rt) };
      runners.push(new BlockRunner(block.name, layout, { params: init, state }, blockSessions, stateDims, cfg.lr));
    } else workerBlocks.push(toWorkerBlock(trainers.length, block, layout, init, { train: trainBytes, eval: evalBytes }, cfg.lr));
    const headParamCount = hp.reduce((a, p) => a + p.init.length, 0);
    log(
      `  block ${block.index} ${block.name.padEnd(12)} out ${block.outputShape.join('×').padEnd(12)} params ${String(layout.total - headParamCount).padStart(9)} + head ${headParamCount}` +
        `${isFrozen(cfg, block) ? ' (frozen)' : ''}${role === 'probe' ? ' (linear head on the detached last block)' : ''}  graphs built in ${((performance.now() - t0) / 1000).toFixed(1)}s`,
    );
    trainers.push({ block, objective, role, layout, plateau: Plateau.start(cfg.lr, cfg.lrPatience), headParamCount, seconds: 0 });
  }
  return { trainers, runners, workerBlocks };
}

/** Serial BlockRunners, or the pipeline `--pipeline` asks for (calibrated on the run's first training batch). */
async function startExecutor(pm: PreparedModel, cfg: RunConfig, opts: FinetuneOptions, rt: RuntimeOptions, data: PreparedData, log: (s: string) => void): Promise<{ trainers: Trainer[]; executor: BlockExecutor }> {
  const setting = opts.pipeline ?? 'off';
  const workers = pipelineWorkers(setting, planStages(pm, cfg).length, rt.threads);
  if (workers === undefined) {
    if (setting === 'auto') log('pipeline auto: room for one worker only (one core or one block), so the blocks run serially');
    const built = await buildTrainers(pm, cfg, rt, log, true);
    return { trainers: built.trainers, executor: new SerialExecutor(built.runners) };
  }
  const built = await buildTrainers(pm, cfg, rt, log, false);
  const dims = [data.train.channels, data.train.height, data.train.width];
  const it = batches(data.train, { batchSize: cfg.batchSize, shuffle: true, seed: cfg.seed, epoch: 0, dropLast: true, mean: data.preprocess.mean, std: data.preprocess.std })[Symbol.asyncIterator]();
  const batch = (await it.next()).value as { x: Float32Array; y: BigInt64Array; n: number };
  const calibration = { x: batch.x.slice(0, batch.n * dims[0]! * dims[1]! * dims[2]!), dims, n: batch.n, labels: batch.y.slice(0, batch.n) };
  await it.return?.(undefined);
  const executor = await startPipeline(built.workerBlocks, {
    setting: setting as 'auto' | number,
    ...(rt.threads ? { threads: rt.threads } : {}),
    ...(rt.device ? { device: rt.device } : {}),
    ...(rt.memArena !== undefined ? { memArena: rt.memArena } : {}),
    ...(opts.pipelineFault ? { fault: opts.pipelineFault } : {}),
    calibration,
    log,
  });
  return { trainers: built.trainers, executor };
}

function splitMetrics(sg: SplitGoodness, J: number): SplitMetrics {
  return {
    loss: sg.goodness.map((g) => goodnessLoss(g, sg.labels, J)),
    acc: sg.goodness.map((g) => accuracy(g, sg.labels, J)),
    layers: {},
  };
}

function saveCheckpoint(cfg: RunConfig, trainers: Trainer[], snapshots: BlockState[], epoch: number, stop: EarlyStopping, history: EpochMetrics[], best: { epoch: number; states: BlockWeights[] }): void {
  const arrays: Record<string, Float32Array> = {};
  const header: CheckpointHeader = {
    version: 1,
    config: cfg,
    epoch,
    blocks: trainers.map((t, k) => {
      const s = snapshots[k]!;
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
  const rules = new Set(['all', 'weighted', cfgRule, ...(K > 4 ? ['last:4'] : [])]);
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
  const data = await prepareData({
    path: o.data,
    imageSize: pm.imageSize,
    channels: pm.inputShape[0]!,
    normalize: o.normalize ?? pm.normalize ?? 'imagenet',
    seed: o.seed ?? 0,
    valFraction: o.valFraction ?? 0.2,
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
  log(`run    ${cfg.out}  (${cfg.method}, norm ${cfg.norm}, aux ${cfg.auxKernel}×${cfg.auxKernel}, lr ${cfg.lr}, batch ${cfg.batchSize}, ensemble ${cfg.ensemble}, seed ${cfg.seed})`);

  const fullSteps = Math.floor(data.train.count / cfg.batchSize);
  const steps = Math.min(fullSteps, cfg.maxStepsPerEpoch ?? Infinity);
  const bnWarning = runningStatsWarning({ blocks: pm.blocks, fromScratch: pm.fromScratch, ...(cfg.bnMomentum !== undefined ? { bnMomentum: cfg.bnMomentum } : {}), totalSteps: steps * cfg.epochs });
  if (bnWarning) log(`warning: ${bnWarning}`);

  const { trainers, executor } = await startExecutor(pm, cfg, o, rt, data, log);
  try {
    return await trainAndExport(opts, cfg, pm, data, rt, resumed, trainers, executor, log, emit);
  } finally {
    await executor.close();
  }
}

async function trainAndExport(
  opts: FinetuneOptions,
  cfg: RunConfig,
  pm: PreparedModel,
  data: PreparedData,
  rt: RuntimeOptions,
  resumed: { header: CheckpointHeader; arrays: Record<string, Float32Array> } | undefined,
  trainers: Trainer[],
  executor: BlockExecutor,
  log: (s: string) => void,
  emit: (e: FinetuneEvent) => void,
): Promise<FinetuneResult> {
  const J = cfg.classes.length;
  const fullSteps = Math.floor(data.train.count / cfg.batchSize);
  const steps = Math.min(fullSteps, cfg.maxStepsPerEpoch ?? Infinity);
  const stop = new EarlyStopping(undefined, cfg.stopPatience);
  let history: EpochMetrics[] = [];
  let startEpoch = 0;
  let best = { epoch: -1, states: await executor.weights() };
  const metricsPath = join(cfg.out, 'metrics.jsonl');
  if (resumed) {
    const h = resumed.header;
    const states: BlockState[] = trainers.map((t, k) => {
      const hb = h.blocks[k]!;
      const state: Record<string, Float32Array> = {};
      const bestState: Record<string, Float32Array> = {};
      for (const s of hb.state) {
        state[s] = resumed.arrays[`b${k}.state.${s}`]!;
        bestState[s] = resumed.arrays[`b${k}.best.state.${s}`]!;
      }
      t.plateau.state = { ...hb.plateau };
      best.states[k] = { params: resumed.arrays[`b${k}.best.params`]!, state: bestState };
      return { params: resumed.arrays[`b${k}.params`]!, m: resumed.arrays[`b${k}.m`]!, v: resumed.arrays[`b${k}.v`]!, state, step: hb.step };
    });
    await executor.restore(states);
    await executor.setLr(h.blocks.map((hb) => hb.plateau.lr));
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
  const trainableParams = trainers.reduce((a, t) => a + t.layout.total, 0); // frozen blocks' layouts hold only their heads

  for (let epoch = startEpoch; epoch < cfg.epochs; epoch++) {
    const t0 = performance.now();
    const running = new RunningMetrics(trainers.length, J, cfg.batchSize);
    await executor.takeSeconds();
    progress.begin();
    let step = 0;
    // Batches handed to the executor and not yet read back (one when serial, one per stage and one more when pipelined).
    const inFlight: { done: Promise<BatchResult>; labels: number[] }[] = [];
    const readBack = async () => {
      const { done, labels: labelNums } = inFlight.shift()!;
      const r = await done;
      for (let k = 0; k < trainers.length; k++) {
        const t = trainers[k]!;
        const loss = r.losses[k]!;
        if (!Number.isFinite(loss))
          throw new NonFiniteLossError(
            `block ${t.block.index} (${t.block.name}) produced a non-finite loss (${loss}) at epoch ${epoch + 1}, step ${step + 1}. ` +
              `The last good checkpoint (${history.length ? `epoch ${history.length}` : 'none yet'}) is kept in ${cfg.out}. Try a lower --lr (now ${t.plateau.state.lr}).`,
          );
        running.addBlock(k, loss, r.goodness[k]!, labelNums, t.role === 'layer');
      }
      running.endBatch(labelNums);
      step++;
      emit({ type: 'step', epoch, step, steps, losses: r.losses });
      progress.update(`epoch ${epoch + 1}/${cfg.epochs}`, step, steps, step * cfg.batchSize, `loss ${r.losses.at(-1)!.toFixed(3)}`);
    };
    let submitted = 0;
    const it = batches(data.train, { batchSize: cfg.batchSize, shuffle: true, seed: cfg.seed, epoch, augment: cfg.augment, dropLast: true, mean, std });
    for await (const batch of it) {
      if (submitted >= steps) break;
      while (inFlight.length >= executor.depth) await readBack();
      const labelNums = Array.from(batch.y.subarray(0, batch.n), Number);
      inFlight.push({ done: executor.train(batch.x.subarray(0, batch.n * perSample), dims, batch.n, epoch * steps + submitted + 1, batch.y), labels: labelNums });
      submitted++;
    }
    while (inFlight.length) await readBack();
    const trainSeconds = (performance.now() - t0) / 1000;
    const blockSeconds = await executor.takeSeconds();
    const val = await executor.evaluate(data.val, { batchSize: cfg.batchSize, classes: J, mean, std });
    progress.end();
    const valMetrics = splitMetrics(val, J);
    const ens = ensembleReport({ labels: val.labels, goodness: layerIdx.map((k) => val.goodness[k]!) }, J, cfg.ensemble);
    valMetrics.layers = ens.layers;
    if (probeIdx >= 0) valMetrics.layers.head = valMetrics.acc[probeIdx]!;
    const weights = trainers.map((t, k) => (t.role === 'layer' ? ens.weights[layerIdx.indexOf(k)]! : 0));
    const lrs = trainers.map((t, k) => t.plateau.observe(valMetrics.loss[k]!));
    await executor.setLr(lrs);
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
      blockImagesPerSecond: blockSeconds.map((sec) => (steps * cfg.batchSize) / Math.max(sec, 1e-9)),
      peakRssMB: peakRssMB(),
    };
    history.push(m);
    const halt = stop.observe(ens.acc, epoch);
    if (stop.state.bestEpoch === epoch) best = { epoch, states: await executor.weights() };
    appendMetrics(metricsPath, m);
    saveCheckpoint(cfg, trainers, await executor.snapshot(), epoch, stop, history, best);
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
    blocks: trainers.map((t) => ({ name: t.block.name, params: t.layout.total - t.headParamCount, headParams: t.headParamCount, frozen: isFrozen(cfg, t.block) })),
    peakRssMB: peakRssMB(),
    trainableParams,
    stoppedEarly,
  };
  if (!opts.noExport && history.length) {
    // Export the best validation epoch's weights.
    await executor.setWeights(best.states);
    const modelPath = join(cfg.out, 'model.onnx');
    const weights = bestMetrics!.ensemble.weights;
    const exported = buildExportModel({
      inputName: pm.inputName,
      inputShape: pm.inputShape,
      blocks: trainers.map((t, k): ExportBlock => ({ block: t.block, objective: t.objective, layout: t.layout, params: best.states[k]!.params, state: new Map(Object.entries(best.states[k]!.state)) })),
      weights,
      classes: cfg.classes,
      preprocess: { size: cfg.imageSize, mean: [...mean], std: [...std] },
      extraMetadata: { 'sff.ensemble': cfg.ensemble, 'sff.source': pm.description },
    });
    saveModel(exported, modelPath);
    result.modelPath = modelPath;
    result.exportCheck = await checkExport(exported, executor, data, cfg, weights, pm.inputName, rt);
    log(
      `${result.exportCheck.maxAbsDiff <= 1e-3 * Math.max(1, result.exportCheck.scale) ? '✓' : '✗'} exported model reproduces training-time evaluation ` +
        `(max abs diff ${result.exportCheck.maxAbsDiff.toExponential(1)}, accuracy ${pct(result.exportCheck.accuracy)})`,
    );
  }
  summarise(result, trainers, log);
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
  executor: BlockExecutor,
  data: PreparedData,
  cfg: RunConfig,
  weights: number[],
  inputName: string,
  rt: RuntimeOptions,
): Promise<{ maxAbsDiff: number; accuracy: number; trainingAccuracy: number; scale: number }> {
  const J = cfg.classes.length;
  const reference = await executor.evaluate(data.val, { batchSize: cfg.batchSize, classes: J, mean: data.preprocess.mean, std: data.preprocess.std });
  const refScores = combine(reference.goodness, weights);
  const session = await createSession(model, rt);
  const dims = [data.val.channels, data.val.height, data.val.width];
  const scores = new Float32Array(data.val.count * J);
  let offset = 0;
  for await (const batch of batches(data.val, { batchSize: cfg.batchSize, shuffle: false, seed: 0, epoch: 0, mean: data.preprocess.mean, std: data.preprocess.std })) {
    const x = new ort.Tensor('float32', batch.x.subarray(0, batch.n * dims[0]! * dims[1]! * dims[2]!), [batch.n, ...dims]);
    const out = await session.run({ [inputName]: x });
    scores.set(out.scores!.data as Float32Array, offset * J);
    offset += batch.n;
  }
  await session.release();
  let maxAbsDiff = 0;
  let scale = 0;
  for (let i = 0; i < scores.length; i++) {
    maxAbsDiff = Math.max(maxAbsDiff, Math.abs(scores[i]! - refScores[i]!));
    scale = Math.max(scale, Math.abs(refScores[i]!));
  }
  return { maxAbsDiff, accuracy: accuracy(scores, reference.labels, J), trainingAccuracy: accuracy(refScores, reference.labels, J), scale };
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
  if (r.modelPath) log(`model written to ${r.modelPath}`);
}
