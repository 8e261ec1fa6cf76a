/**
 * The main job: SFF fine-tuning of an ONNX classifier, as a pipeline:
 * data → model and blocks → one trainer per block → epoch loop → export and its check → report.
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { prepareData } from '../data/index.js';
import { createSession, type RuntimeOptions } from '../runtime/session.js';
import { prepareModel } from './model.js';
import { resolveConfig, resumedOptions, splitFractions, type FinetuneOptions } from './options.js';
import { matchPretrainedClassifier, type MatchedClassifier } from './classifierInit.js';
import { testReport } from './testReport.js';
import type { SplitGoodness } from './evaluate.js';
import type { Model } from '../ir/graph.js';
import { buildTrainers, isFrozen } from './stages.js';
import { readRunCheckpoint, restoreRunState, weightsOfAll, type RunState } from './runState.js';
import { runEpochs, sequentialStepper, trainableParams } from './loop.js';
import { exportBest } from './exportCheck.js';
import { exportCheckLine, pct, summarise, writeSummary, type FinetuneResult } from './report.js';
import { peakRssMB } from './metrics.js';
import { runningStatsWarning } from './batchnorm.js';
import { EarlyStopping } from './schedule.js';

export { NonFiniteLossError } from './loop.js';
export type { FinetuneResult } from './report.js';

export async function finetune(opts: FinetuneOptions): Promise<FinetuneResult> {
  const emit = opts.onEvent ?? (() => {});
  const log = (message: string) => {
    if (!opts.quiet) console.log(message);
    emit({ type: 'log', message });
  };
  const resumed = opts.resume ? readRunCheckpoint(opts.resume) : undefined;
  const prior = resumed?.header.config;
  const o = resumedOptions(opts, prior);
  const rt: RuntimeOptions = { device: opts.device, threads: opts.threads, memArena: opts.memArena };

  // Data, model and blocks, and the run's configuration.
  const pm = await prepareModel(o.model, { blocks: o.blocks ?? 'auto', imageSize: o.imageSize });
  log(`model  ${pm.description}`);
  const fractions = prior ? { valFraction: prior.valFraction, testFraction: prior.testFraction ?? 0 } : splitFractions(o);
  const data = await prepareData({
    path: o.data, imageSize: pm.imageSize, channels: pm.inputShape[0]!, normalize: o.normalize ?? pm.normalize, seed: o.seed, ...fractions,
    ...(o.subset ? { subset: o.subset } : {}), ...(o.testData ? { testPath: o.testData } : {}), ...(opts.cacheDir ? { cacheDir: opts.cacheDir } : {}), ...(prior ? { expectClasses: prior.classes } : {}),
  });
  log(`data   ${data.source}${data.skipped.length ? `; ${data.skipped.length} unreadable images skipped` : ''}`);
  for (const s of data.skipped.slice(0, 5)) log(`       skipped ${s.path}: ${s.reason}`);
  const cfg = prior ? { ...prior, epochs: o.epochs ?? prior.epochs } : resolveConfig(o, pm, data.classes);
  if (data.train.count < cfg.batchSize) throw new Error(`the training split has ${data.train.count} images, fewer than one batch of ${cfg.batchSize}: lower --batch-size`);
  mkdirSync(cfg.out, { recursive: true });
  log(`run    ${cfg.out}  (${cfg.method}, norm ${cfg.norm}, aux ${cfg.auxKernel}×${cfg.auxKernel}, lr ${cfg.lr}, batch ${cfg.batchSize}, ensemble ${cfg.ensemble}, seed ${cfg.seed})`);
  const steps = Math.min(Math.floor(data.train.count / cfg.batchSize), cfg.maxStepsPerEpoch ?? Infinity);
  const bnWarning = runningStatsWarning({ blocks: pm.blocks, fromScratch: pm.fromScratch, ...(cfg.bnMomentum !== undefined ? { bnMomentum: cfg.bnMomentum } : {}), totalSteps: steps * cfg.epochs });
  if (bnWarning) log(`warning: ${bnWarning}`);

  // One trainer per block; the run state fresh or from the checkpoint.
  let headInit: MatchedClassifier | undefined;
  if (cfg.method === 'sff' && cfg.headBlock && (cfg.headInit ?? 'random') === 'matched' && !resumed) {
    headInit = await matchPretrainedClassifier(pm, data.train, cfg.classes.length, data.preprocess, rt);
    log(
      headInit
        ? `head   J-way map starts from the pretrained classifier's rows, matched on ${headInit.images} training images: ${cfg.classes.map((c, j) => `${c}→${headInit!.source[j]} (${pct(headInit!.meanProb[j]!)})`).join(', ')}`
        : "head   the pretrained classifier cannot start the J-way map (not a linear map on the head block's output): random start",
    );
  }
  const trainers = await buildTrainers(pm, cfg, rt, log, headInit);
  const run: RunState = { history: [], best: { epoch: -1, states: weightsOfAll(trainers) }, stop: new EarlyStopping(undefined, cfg.stopPatience), startEpoch: 0 };
  const metricsPath = join(cfg.out, 'metrics.jsonl');
  if (resumed) {
    restoreRunState(resumed, trainers, run);
    // Drop metric lines of epochs after the checkpoint (a run killed mid-epoch may have written none, but be exact).
    writeFileSync(metricsPath, run.history.map((m) => JSON.stringify(m) + '\n').join(''));
    log(`resume from epoch ${run.startEpoch} (checkpoint in ${cfg.out})`);
  } else if (existsSync(metricsPath)) rmSync(metricsPath);

  const stoppedEarly = await runEpochs({ cfg, trainers, data, run, stepper: sequentialStepper(trainers.map((t) => t.runner)), steps, emit, log });

  const best = run.best.epoch >= 0 ? run.history[run.best.epoch] : run.history.at(-1);
  const result: FinetuneResult = {
    out: cfg.out, config: cfg, history: run.history, best, peakRssMB: peakRssMB(), trainableParams: trainableParams(trainers), stoppedEarly,
    blocks: trainers.map((t) => ({ name: t.block.name, params: t.runner.layout.total - t.headParamCount, headParams: t.headParamCount, frozen: isFrozen(cfg, t.block) })),
  };
  // Export (and test) the best validation epoch's weights.
  if (best) trainers.forEach((t, k) => t.runner.setWeights(run.best.states[k]!));
  let exported: Model | undefined;
  let valGoodness: SplitGoodness | undefined; // the exported weights' validation goodness, computed once
  if (!opts.noExport && best) {
    const e = await exportBest(pm, trainers, run.best, best.ensemble.weights, data, cfg, rt);
    Object.assign(result, { modelPath: e.modelPath, exportCheck: e.exportCheck });
    exported = e.exported;
    valGoodness = e.valGoodness;
    log(exportCheckLine(result.exportCheck!));
  }
  if (data.test && best) {
    const session = exported ? await createSession(exported, rt) : undefined;
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
  summarise(result, trainers, log);
  await Promise.all(trainers.map((t) => t.runner.release()));
  return result;
}
