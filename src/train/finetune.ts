/**
 * The main job: SFF fine-tuning of an ONNX classifier, as a pipeline:
 * data → model and blocks → config.json → one trainer per block → epoch loop → export and its check → summary.
 * It reports through structured events (./events.ts) and prints nothing unless asked (`quiet: false`).
 */
import { mkdirSync } from 'node:fs';
import { prepareData } from '../data/index.js';
import type { RuntimeOptions } from '../runtime/session.js';
import { prepareModel } from './model.js';
import { resolveConfig, resumedOptions, splitFractions, type FinetuneOptions } from './options.js';
import { matchPretrainedClassifier, type MatchedClassifier } from './classifierInit.js';
import { testReport } from './testReport.js';
import { createSession } from '../runtime/session.js';
import type { SplitGoodness } from './evaluate.js';
import type { Model } from '../ir/graph.js';
import { buildTrainers, isFrozen } from './stages.js';
import { readRunCheckpoint, restoreRunState, weightsOfAll, type RunState } from './runState.js';
import { runEpochs, sequentialStepper, trainableParams } from './loop.js';
import { exportBest } from './exportCheck.js';
import { createReporter, writeSummary, type FinetuneResult } from './report.js';
import { peakRssMB } from './metrics.js';
import { writeMetricsFiles } from './metricsFiles.js';
import { runtimeChoices, writeRunConfig } from './configFile.js';
import { RunProgress } from './progress.js';
import { runningStatsWarning } from './batchnorm.js';
import { EarlyStopping } from './schedule.js';
import type { FinetuneEvent } from './events.js';

export { NonFiniteLossError } from './loop.js';
export type { FinetuneResult } from './report.js';

export async function finetune(opts: FinetuneOptions): Promise<FinetuneResult> {
  const print = opts.quiet === false ? createReporter({ stream: process.stderr, verbosity: opts.verbosity ?? 'normal' }) : undefined;
  const emit = (e: FinetuneEvent) => {
    print?.(e);
    opts.onEvent?.(e);
  };
  const signal = opts.signal;
  signal?.throwIfAborted();
  const progress = new RunProgress(emit);
  const resumed = opts.resume ? readRunCheckpoint(opts.resume) : undefined;
  const prior = resumed?.header.config;
  const o = resumedOptions(opts, prior);
  const rt: RuntimeOptions = { device: opts.device, threads: opts.threads, memArena: opts.memArena };

  // Data, model and blocks, and the run's configuration (written to config.json before any step).
  const pm = await prepareModel(o.model, { blocks: o.blocks ?? 'auto', imageSize: o.imageSize });
  emit({ type: 'model', source: o.model, description: pm.description, blocks: pm.blocks.length });
  let decode: ReturnType<RunProgress['phase']> | undefined;
  const fractions = prior ? { valFraction: prior.valFraction, testFraction: prior.testFraction ?? 0 } : splitFractions(o);
  const data = await prepareData({
    path: o.data, imageSize: pm.imageSize, channels: pm.inputShape[0]!, normalize: o.normalize ?? pm.normalize, seed: o.seed, ...fractions,
    ...(o.subset ? { subset: o.subset } : {}), ...(o.testData ? { testPath: o.testData } : {}), ...(opts.cacheDir ? { cacheDir: opts.cacheDir } : {}), ...(prior ? { expectClasses: prior.classes } : {}),
    onProgress: (done, total) => (decode ??= progress.phase('decode', total, 'images')).update(done),
  });
  decode?.end();
  emit({ type: 'data', source: data.source, classes: data.classes, train: data.train.count, val: data.val.count, ...(data.test ? { test: data.test.count } : {}), skipped: data.skipped });
  const cfg = prior ? { ...prior, epochs: o.epochs ?? prior.epochs } : resolveConfig(o, pm, data.classes);
  if (data.train.count < cfg.batchSize) throw new Error(`the training split has ${data.train.count} images, fewer than one batch of ${cfg.batchSize}: lower --batch-size`);
  mkdirSync(cfg.out, { recursive: true });
  const configPath = writeRunConfig(cfg, runtimeChoices(opts), data, resumed ? resumed.header.epoch + 1 : 0);
  emit({ type: 'config', config: cfg, path: configPath });
  const steps = Math.min(Math.floor(data.train.count / cfg.batchSize), cfg.maxStepsPerEpoch ?? Infinity);
  const bnWarning = runningStatsWarning({ blocks: pm.blocks, fromScratch: pm.fromScratch, ...(cfg.bnMomentum !== undefined ? { bnMomentum: cfg.bnMomentum } : {}), totalSteps: steps * cfg.epochs });
  if (bnWarning) emit({ type: 'warning', message: bnWarning });

  // One trainer per block; the run state fresh or from the checkpoint.
  // The head block's J-way map from the pretrained classifier (training images only).
  let headInit: MatchedClassifier | undefined;
  if (cfg.method === 'sff' && cfg.headBlock && (cfg.headInit ?? 'random') === 'matched' && !resumed) {
    headInit = await matchPretrainedClassifier(pm, data.train, cfg.classes.length, data.preprocess, rt);
    emit({ type: 'head-init', classes: cfg.classes, ...(headInit ? { matched: { source: headInit.source, meanProb: headInit.meanProb, images: headInit.images } } : {}) });
  }
  const trainers = await buildTrainers(pm, cfg, rt, emit, progress, signal, headInit);
  const blockNames = trainers.map((t) => t.block.name);
  const run: RunState = { history: [], best: { epoch: -1, states: weightsOfAll(trainers) }, stop: new EarlyStopping(undefined, cfg.stopPatience), startEpoch: 0 };
  if (resumed) {
    restoreRunState(resumed, trainers, run);
    emit({ type: 'resume', fromEpoch: run.startEpoch + 1, out: cfg.out });
  }
  // Rewritten from the history: a resumed run drops lines of epochs after its checkpoint, a new one starts empty.
  writeMetricsFiles(cfg.out, run.history, blockNames);

  const valBatches = Math.ceil(data.val.count / cfg.batchSize);
  progress.plan({ epochsLeft: cfg.epochs - run.startEpoch, epochs: cfg.epochs, stepsPerEpoch: steps, valBatches, exportCheck: !opts.noExport });
  const stoppedEarly = await runEpochs({ cfg, trainers, data, run, stepper: sequentialStepper(trainers.map((t) => t.runner)), steps, emit, progress, ...(signal ? { signal } : {}) });

  const best = run.best.epoch >= 0 ? run.history[run.best.epoch] : run.history.at(-1);
  const result: FinetuneResult = {
    out: cfg.out, config: cfg, history: run.history, best, peakRssMB: peakRssMB(), trainableParams: trainableParams(trainers), stoppedEarly,
    blocks: trainers.map((t) => ({ index: t.block.index, name: t.block.name, params: t.runner.layout.total - t.headParamCount, headParams: t.headParamCount, frozen: isFrozen(cfg, t.block) })),
  };
  // Export (and test) the best validation epoch's weights.
  if (best) trainers.forEach((t, k) => t.runner.setWeights(run.best.states[k]!));
  let model: Model | undefined;
  let valGoodness: SplitGoodness | undefined; // the exported weights' validation goodness, computed once
  if (!opts.noExport && best) {
    const { exported, valGoodness: vg, ...outcome } = await exportBest(pm, trainers, run.best, best, data, cfg, rt, progress);
    Object.assign(result, outcome);
    model = exported;
    valGoodness = vg;
    emit({ type: 'export', path: outcome.modelPath, sidecar: outcome.sidecarPath, check: outcome.exportCheck, heads: outcome.exportedHeads, ...(outcome.latency ? { latency: outcome.latency } : {}) });
  }
  if (data.test && best) {
    const session = model ? await createSession(model, rt) : undefined;
    result.test = await testReport({
      runners: trainers.map((t) => t.runner),
      layerIdx: trainers.flatMap((t, k) => (t.role === 'layer' ? [k] : [])),
      val: data.val,
      test: data.test,
      source: data.source,
      classes: cfg.classes.length,
      batchSize: cfg.batchSize,
      mean: [...data.preprocess.mean],
      std: [...data.preprocess.std],
      rule: cfg.ensemble,
      weights: best.ensemble.weights,
      ...(valGoodness ? { valGoodness } : {}),
      ...(session ? { exported: { session, inputName: pm.inputName } } : {}),
    });
    await session?.release();
  }
  writeSummary(result);
  emit({ type: 'summary', result });
  await Promise.all(trainers.map((t) => t.runner.release()));
  return result;
}
