/**
 * The main job: SFF fine-tuning of an ONNX classifier (SPEC §1–4).
 * model → blocks → per-block train/eval graphs → epochs of local updates →
 * checkpoints → export → a check that the export reproduces training-time evaluation.
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import ort from 'onnxruntime-node';
import { batches, prepareData, type PreparedData } from '../data/index.js';
import { encodeModel, saveModel, writeFileAtomic } from '../onnx/io.js';
import { defaultAuxKernel } from '../sff/head.js';
import { classifierObjective, cwcObjective, linearProbe, sffObjective, type Objective } from '../sff/objective.js';
import { accuracy, combine, ensembleAccuracy, ensembleWeights, formatEnsemble, parseEnsemble } from '../sff/ensemble.js';
import { ADAMW_DEFAULTS } from '../optim/adamw.js';
import { mixSeed } from '../util/rng.js';
import { blockLayout, buildEvalGraph, buildTrainStep, headPrefix, initialParams } from './artifacts.js';
import { BlockRunner, type BlockWeights } from './runner.js';
import { createSession, type RuntimeOptions } from './session.js';
import { collectGoodness, type SplitGoodness } from './evaluate.js';
import { goodnessLoss, peakRssMB, RunningMetrics, type EpochMetrics, type SplitMetrics } from './metrics.js';
import { writeMetricsFiles } from './metricsFiles.js';
import { runtimeChoices, writeRunConfig } from './configFile.js';
import { createReporter } from './reporter.js';
import type { ExportCheck, FinetuneEvent } from './events.js';
import { EarlyStopping, Plateau, type EarlyStopState, type PlateauState } from './schedule.js';
import { readCheckpoint, writeCheckpoint } from './checkpoint.js';
import { curvesSvg, reportHtml } from './curves.js';
import { RunProgress } from './progress.js';
import { bpBlock, prepareModel, type PreparedModel } from './model.js';
import { buildExportModel, exportedHeads, goodnessOutputName, type ExportBlock } from '../export/exportModel.js';
import { buildSidecar, writeSidecar } from '../export/sidecar.js';
import { measureLatency } from '../export/latency.js';
import { runningStatsWarning } from './batchnorm.js';
import { OptionError, type FinetuneOptions, type RunConfig } from './options.js';
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
  exportCheck?: ExportCheck;
  /** model.json beside model.onnx, the goodness outputs kept in the export, and its measured latency. */
  sidecarPath?: string;
  exportedHeads?: string[];
  latency?: import('./events.js').LatencyNote;
  blocks: { index: number; name: string; params: number; headParams: number; frozen: boolean }[];
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
    exportHeads: opts.exportHeads ?? 'ensemble',
    exportScores: opts.exportScores ?? 'logits',
    exportDtype: opts.exportDtype ?? 'float32',
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

async function buildTrainers(pm: PreparedModel, cfg: RunConfig, rt: RuntimeOptions, emit: (e: FinetuneEvent) => void, progress: RunProgress, signal?: AbortSignal): Promise<Trainer[]> {
  const dir = join(cfg.out, 'blocks');
  mkdirSync(dir, { recursive: true });
  const trainers: Trainer[] = [];
  const J = cfg.classes.length;
  const stages = planStages(pm, cfg);
  const phase = progress.phase('build', stages.length, 'blocks');
  phase.update(0);
  for (const { block, objective, role } of stages) {
    signal?.throwIfAborted();
    const hp = objective.params;
    const layout = blockLayout(block, hp);
    const init = initialParams(block, hp, layout);
    const t0 = performance.now();
    const train = await buildTrainStep({ block, objective, classes: J, batchSize: cfg.batchSize, adamw: { ...ADAMW_DEFAULTS, weightDecay: cfg.weightDecay }, ...(cfg.bnMomentum !== undefined ? { bnMomentum: cfg.bnMomentum } : {}) }, layout);
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
    emit({
      type: 'block',
      index: block.index,
      name: block.name,
      outputShape: block.outputShape,
      params: layout.total - headParamCount,
      headParams: headParamCount,
      frozen: isFrozen(cfg, block),
      probe: role === 'probe',
      buildSeconds: (performance.now() - t0) / 1000,
    });
    trainers.push({ block, objective, role, runner, plateau: Plateau.start(cfg.lr, cfg.lrPatience), headParamCount, seconds: 0 });
    phase.update(trainers.length);
  }
  phase.end();
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

export async function finetune(opts: FinetuneOptions): Promise<FinetuneResult> {
  // The library prints nothing unless asked (quiet: false); events always reach onEvent.
  const print = opts.quiet === false ? createReporter({ stream: process.stderr, verbosity: opts.verbosity ?? 'normal' }) : undefined;
  const emit = (e: FinetuneEvent) => {
    print?.(e);
    opts.onEvent?.(e);
  };
  const signal = opts.signal;
  signal?.throwIfAborted();
  const progress = new RunProgress(emit);
  const resumed = opts.resume ? readCheckpoint<CheckpointHeader>(join(opts.resume, CHECKPOINT_FILE)) : undefined;
  const prior = resumed?.header.config;
  // A resumed run keeps its configuration; only the number of epochs may be raised.
  const o: FinetuneOptions = prior ? { ...opts, ...prior, imageSize: prior.imageSize[0], epochs: opts.epochs ?? prior.epochs } : opts;
  const rt: RuntimeOptions = { device: opts.device, threads: opts.threads, memArena: opts.memArena };

  const pm = await prepareModel(o.model, { blocks: o.blocks ?? 'auto', imageSize: o.imageSize ?? prior?.imageSize[0] });
  emit({ type: 'model', source: o.model, description: pm.description, blocks: pm.blocks.length });
  let decode: ReturnType<RunProgress['phase']> | undefined;
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
    onProgress: (done, total) => {
      decode ??= progress.phase('decode', total, 'images');
      decode.update(done);
    },
  });
  decode?.end();
  emit({ type: 'data', source: data.source, classes: data.classes, train: data.train.count, val: data.val.count, ...(data.test ? { test: data.test.count } : {}), skipped: data.skipped });
  const cfg = prior ?? resolveConfig(o, pm, data);
  if (prior) cfg.epochs = o.epochs ?? prior.epochs;
  if (data.train.count < cfg.batchSize)
    throw new Error(`the training split has ${data.train.count} images, fewer than one batch of ${cfg.batchSize}: lower --batch-size`);
  mkdirSync(cfg.out, { recursive: true });
  const J = cfg.classes.length;
  const configPath = writeRunConfig(cfg, runtimeChoices(opts), data, resumed ? resumed.header.epoch + 1 : 0);
  emit({ type: 'config', config: cfg, path: configPath });

  const fullSteps = Math.floor(data.train.count / cfg.batchSize);
  const steps = Math.min(fullSteps, cfg.maxStepsPerEpoch ?? Infinity);
  const bnWarning = runningStatsWarning({ blocks: pm.blocks, fromScratch: pm.fromScratch, ...(cfg.bnMomentum !== undefined ? { bnMomentum: cfg.bnMomentum } : {}), totalSteps: steps * cfg.epochs });
  if (bnWarning) emit({ type: 'warning', message: bnWarning });

  const trainers = await buildTrainers(pm, cfg, rt, emit, progress, signal);
  const blockNames = trainers.map((t) => t.block.name);
  const stop = new EarlyStopping(undefined, cfg.stopPatience);
  let history: EpochMetrics[] = [];
  let startEpoch = 0;
  let best = { epoch: -1, states: weightsOfAll(trainers) };
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
    emit({ type: 'resume', fromEpoch: h.epoch + 2, out: cfg.out });
  }
  // Rewritten from the history: a resumed run drops lines of epochs after its checkpoint, a new one starts empty.
  writeMetricsFiles(cfg.out, history, blockNames);

  const mean = data.preprocess.mean;
  const std = data.preprocess.std;
  const dims = [data.train.channels, data.train.height, data.train.width];
  const perSample = dims[0]! * dims[1]! * dims[2]!;
  let stoppedEarly = false;
  const valBatches = Math.ceil(data.val.count / cfg.batchSize);
  progress.plan({ epochsLeft: cfg.epochs - startEpoch, epochs: cfg.epochs, stepsPerEpoch: steps, valBatches, exportCheck: !opts.noExport });
  const layerIdx = trainers.flatMap((t, k) => (t.role === 'layer' ? [k] : []));
  const probeIdx = trainers.findIndex((t) => t.role === 'probe');
  const trainableParams = trainers.reduce((a, t) => a + t.runner.layout.total, 0); // frozen blocks' layouts hold only their heads
  // An aborted run stops after the step in flight: sessions released, the last finished epoch's checkpoint kept.
  const abortIfAsked = async () => {
    if (!signal?.aborted) return;
    await Promise.all(trainers.map((t) => t.runner.release()));
    signal.throwIfAborted();
  };

  for (let epoch = startEpoch; epoch < cfg.epochs; epoch++) {
    const t0 = performance.now();
    const running = new RunningMetrics(trainers.length, J, cfg.batchSize);
    trainers.forEach((t) => (t.seconds = 0));
    const trainPhase = progress.phase('train', steps, 'steps', { epoch: epoch + 1, epochs: cfg.epochs });
    trainPhase.update(0);
    let step = 0;
    let lossSum = 0;
    const it = batches(data.train, { batchSize: cfg.batchSize, shuffle: true, seed: cfg.seed, epoch, augment: cfg.augment, dropLast: true, mean, std });
    for await (const batch of it) {
      if (step >= steps) break;
      const labels = new ort.Tensor('int64', batch.y.subarray(0, batch.n), [batch.n]);
      const labelNums = Array.from(batch.y.subarray(0, batch.n), Number);
      let x: ort.Tensor = new ort.Tensor('float32', batch.x.subarray(0, batch.n * perSample), [batch.n, ...dims]);
      const losses: number[] = [];
      for (let k = 0; k < trainers.length; k++) {
        const t = trainers[k]!;
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
      lossSum += losses.reduce((a, l) => a + l, 0) / losses.length;
      emit({ type: 'step', epoch, step, steps, losses });
      trainPhase.update(step, { imagesPerSecond: (step * cfg.batchSize) / Math.max((performance.now() - t0) / 1000, 1e-9), meanLoss: lossSum / step });
      await abortIfAsked();
    }
    trainPhase.end();
    const trainSeconds = (performance.now() - t0) / 1000;
    const valPhase = progress.phase('validate', valBatches, 'batches', { epoch: epoch + 1, epochs: cfg.epochs });
    let valDone = 0;
    const val = await collectGoodness(trainers.map((t) => t.runner), data.val, { batchSize: cfg.batchSize, classes: J, mean, std, onBatch: () => valPhase.update(++valDone) });
    valPhase.end();
    const valMetrics = splitMetrics(val, J);
    const ens = ensembleReport({ labels: val.labels, goodness: layerIdx.map((k) => val.goodness[k]!) }, J, cfg.ensemble);
    valMetrics.layers = ens.layers;
    if (probeIdx >= 0) valMetrics.layers.head = valMetrics.acc[probeIdx]!;
    const weights = trainers.map((t, k) => (t.role === 'layer' ? ens.weights[layerIdx.indexOf(k)]! : 0));
    const lrs = trainers.map((t, k) => (t.runner.lr = t.plateau.observe(valMetrics.loss[k]!)));
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
      time: new Date().toISOString(),
    };
    history.push(m);
    const halt = stop.observe(ens.acc, epoch);
    if (stop.state.bestEpoch === epoch) best = { epoch, states: weightsOfAll(trainers) };
    writeMetricsFiles(cfg.out, history, blockNames);
    saveCheckpoint(cfg, trainers, epoch, stop, history, best);
    writeFileAtomic(join(cfg.out, 'curves.svg'), curvesSvg(history, blockNames, `${cfg.method.toUpperCase()}: loss and accuracy per block and ensemble`));
    writeFileAtomic(join(cfg.out, 'report.html'), reportHtml(history, blockNames, cfg, best.epoch + 1));
    emit({ type: 'epoch', metrics: m, blocks: blockNames, epochs: cfg.epochs });
    if (halt) {
      stoppedEarly = true;
      emit({ type: 'early-stop', patience: cfg.stopPatience, bestAccuracy: stop.state.best, bestEpoch: stop.state.bestEpoch + 1 });
      break;
    }
  }

  const bestMetrics = best.epoch >= 0 ? history[best.epoch] : history.at(-1);
  const result: FinetuneResult = {
    out: cfg.out,
    config: cfg,
    history,
    best: bestMetrics,
    blocks: trainers.map((t) => ({ index: t.block.index, name: t.block.name, params: t.runner.layout.total - t.headParamCount, headParams: t.headParamCount, frozen: isFrozen(cfg, t.block) })),
    peakRssMB: peakRssMB(),
    trainableParams,
    stoppedEarly,
  };
  if (!opts.noExport && history.length) {
    // Export the best validation epoch's weights.
    trainers.forEach((t, k) => t.runner.setWeights(best.states[k]!));
    const modelPath = join(cfg.out, 'model.onnx');
    const weights = bestMetrics!.ensemble.weights;
    const scoresKind = cfg.exportScores ?? 'logits';
    const dtype = cfg.exportDtype ?? 'float32';
    const heads = exportedHeads(trainers.map((t) => t.block), weights, cfg.exportHeads);
    const exported = buildExportModel({
      inputName: pm.inputName,
      inputShape: pm.inputShape,
      blocks: trainers.map((t): ExportBlock => ({ block: t.block, objective: t.objective, layout: t.runner.layout, params: t.runner.currentParams(), state: t.runner.currentState() })),
      weights,
      classes: cfg.classes,
      preprocess: { size: cfg.imageSize, mean: [...mean], std: [...std] },
      extraMetadata: { 'sff.ensemble': cfg.ensemble, 'sff.source': pm.description },
      heads: cfg.exportHeads ?? 'ensemble',
      scores: scoresKind,
      dtype,
    });
    saveModel(exported, modelPath);
    result.modelPath = modelPath;
    result.exportedHeads = heads;
    result.exportCheck = await checkExport(exported, trainers, data, cfg, weights, pm.inputName, rt, progress);
    result.sidecarPath = join(cfg.out, 'model.json');
    writeSidecar(
      result.sidecarPath,
      buildSidecar({
        modelFile: 'model.onnx',
        classes: cfg.classes,
        inputName: pm.inputName,
        inputShape: pm.inputShape,
        preprocess: { size: cfg.imageSize, mean: [...mean], std: [...std] },
        scores: scoresKind,
        goodness: trainers.flatMap((t) => (heads.includes(goodnessOutputName(t.block)) ? [{ name: goodnessOutputName(t.block), block: t.block.name }] : [])),
        ensemble: { rule: cfg.ensemble, blocks: blockNames, weights },
        dtype,
        source: { model: cfg.model, description: pm.description, method: cfg.method, bestEpoch: bestMetrics!.epoch, validationAccuracy: bestMetrics!.ensemble.acc },
      }),
    );
    if (cfg.method !== 'bp')
      result.latency = await measureLatency({
        exported,
        original: pm.imported.model,
        inputShape: pm.inputShape,
        batch: pm.imported.dynamicBatch ? Math.min(16, cfg.batchSize) : 1,
        runtime: rt,
      });
    emit({ type: 'export', path: modelPath, sidecar: result.sidecarPath, check: result.exportCheck, heads, ...(result.latency ? { latency: result.latency } : {}) });
  }
  emit({ type: 'summary', result });
  await Promise.all(trainers.map((t) => t.runner.release()));
  return result;
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
  progress: RunProgress,
): Promise<ExportCheck> {
  const J = cfg.classes.length;
  const batchesPerPass = Math.ceil(data.val.count / cfg.batchSize);
  const phase = progress.phase('export-check', 2 * batchesPerPass, 'batches');
  let done = 0;
  const reference = await collectGoodness(trainers.map((t) => t.runner), data.val, {
    batchSize: cfg.batchSize,
    classes: J,
    mean: data.preprocess.mean,
    std: data.preprocess.std,
    onBatch: () => phase.update(++done),
  });
  const combined = combine(reference.goodness, weights);
  const refScores = cfg.exportScores === 'probabilities' ? softmaxRows(combined, J) : combined;
  const session = await createSession(model, rt);
  const dims = [data.val.channels, data.val.height, data.val.width];
  const scores = new Float32Array(data.val.count * J);
  let offset = 0;
  for await (const batch of batches(data.val, { batchSize: cfg.batchSize, shuffle: false, seed: 0, epoch: 0, mean: data.preprocess.mean, std: data.preprocess.std })) {
    const x = new ort.Tensor('float32', batch.x.subarray(0, batch.n * dims[0]! * dims[1]! * dims[2]!), [batch.n, ...dims]);
    const out = await session.run({ [inputName]: x });
    scores.set(out.scores!.data as Float32Array, offset * J);
    offset += batch.n;
    phase.update(++done);
  }
  phase.end();
  await session.release();
  let maxAbsDiff = 0;
  let scale = 0;
  for (let i = 0; i < scores.length; i++) {
    maxAbsDiff = Math.max(maxAbsDiff, Math.abs(scores[i]! - refScores[i]!));
    scale = Math.max(scale, Math.abs(refScores[i]!));
  }
  const tolerance = (cfg.exportDtype === 'float16' ? 2e-2 : 1e-3) * Math.max(1, scale);
  return { maxAbsDiff, accuracy: accuracy(scores, reference.labels, J), trainingAccuracy: accuracy(refScores, reference.labels, J), scale, tolerance };
}

/** Row-wise softmax of an [n, J] matrix (the reference for an export whose scores are probabilities). */
function softmaxRows(m: Float32Array, J: number): Float32Array {
  const out = new Float32Array(m.length);
  for (let r = 0; r < m.length / J; r++) {
    let max = -Infinity;
    for (let c = 0; c < J; c++) max = Math.max(max, m[r * J + c]!);
    let sum = 0;
    for (let c = 0; c < J; c++) sum += out[r * J + c] = Math.exp(m[r * J + c]! - max);
    for (let c = 0; c < J; c++) out[r * J + c]! /= sum;
  }
  return out;
}
