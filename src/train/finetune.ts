/**
 * The main job: SFF fine-tuning of an ONNX classifier, as a pipeline:
 * data → model and blocks → config.json → one trainer per block → epoch loop → export and its check → summary.
 * It reports through structured events (./events.ts) and prints nothing unless asked (`quiet: false`).
 */
import { resolve } from 'node:path';
import { prepareData } from '../data/index.js';
import { checkDevice, type RuntimeOptions } from '../runtime/session.js';
import { checkMemory, stepActivationBytes } from '../util/limits.js';
import { prepareModel } from './model.js';
import { defaultOut, resolveConfig, resumedOptions, splitFractions, type FinetuneOptions } from './options.js';
import { checkFreezeNames, styleOf, validateFinetuneOptions } from './validate.js';
import { explainWriteFault, openRunFolder, resumedConfig, type RunFolder } from './runFolder.js';
import { matchPretrainedClassifier, type MatchedClassifier } from './classifierInit.js';
import { testReport } from './testReport.js';
import { createSession } from '../runtime/session.js';
import type { SplitGoodness } from './evaluate.js';
import type { Model } from '../ir/graph.js';
import { isFrozen } from './stages.js';
import { readRunCheckpoint, restoreRunState, type RunState } from './runState.js';
import { runEpochs, trainableParams } from './loop.js';
import { startExecutor } from './executor.js';
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

export async function finetune(options: FinetuneOptions): Promise<FinetuneResult> {
  const opts = validateFinetuneOptions(options);
  const held: { folder?: RunFolder } = {};
  try {
    return await finetuneIn(opts, held);
  } catch (e) {
    throw held.folder ? explainWriteFault(e, held.folder.dir) : e;
  } finally {
    held.folder?.release();
  }
}

/** The run itself; `held.folder` is the run folder once claimed (locked), released by `finetune`. */
async function finetuneIn(opts: FinetuneOptions, held: { folder?: RunFolder }): Promise<FinetuneResult> {
  const print = opts.quiet === false ? createReporter({ stream: process.stderr, verbosity: opts.verbosity ?? 'normal' }) : undefined;
  const emit = (e: FinetuneEvent) => {
    print?.(e);
    opts.onEvent?.(e);
  };
  const note = (message: string) => emit({ type: 'note', message });
  const signal = opts.signal;
  signal?.throwIfAborted();
  const progress = new RunProgress(emit);
  // A resumed run keeps its configuration, in the folder given (wherever it was first written);
  // only --epochs and inputs that moved may change: see resumedConfig.
  const resumeDir = opts.resume !== undefined ? resolve(opts.resume) : undefined;
  const resumed = resumeDir ? readRunCheckpoint(resumeDir) : undefined;
  const prior = resumed ? resumedConfig(resumed.header.config, opts, resumeDir!) : undefined;
  const o = resumedOptions(opts, prior);
  const rt: RuntimeOptions = { device: opts.device, threads: opts.threads, memArena: opts.memArena };

  await checkDevice(rt); // a device that cannot run fails here, before any work
  // Data, model and blocks, and the run's configuration (written to config.json before any step).
  const pm = await prepareModel(o.model, { blocks: o.blocks ?? 'auto', imageSize: o.imageSize, dataPath: o.data });
  // Block names are known only now; a bad --freeze is still refused before anything is reported.
  if ((o.method ?? 'sff') !== 'bp') checkFreezeNames(o.freeze ?? [], pm.headBlock ? [...pm.blocks, pm.headBlock] : pm.blocks, styleOf(opts));
  emit({ type: 'model', source: o.model, description: pm.description, blocks: pm.blocks.length });
  if (pm.imageSizeChoice.source !== 'graph') note(`input  ${pm.imageSizeChoice.reason}`);
  // The folder is claimed (locked, checked) before the data is decoded: refusals come first.
  held.folder = openRunFolder({
    out: prior?.out ?? resolve(opts.out ?? defaultOut(pm.shortName)),
    resume: !!prior, overwrite: !!opts.overwrite, inputs: [o.model, o.data, ...(o.testData ? [o.testData] : [])], log: note,
  });
  let decode: ReturnType<RunProgress['phase']> | undefined;
  const fractions = prior ? { valFraction: prior.valFraction, testFraction: prior.testFraction ?? 0 } : splitFractions(o);
  const data = await prepareData({
    path: o.data, imageSize: pm.imageSize, channels: pm.inputShape[0]!, normalize: o.normalize ?? pm.normalize, seed: o.seed, ...fractions,
    ...(o.subset ? { subset: o.subset } : {}), ...(o.testData ? { testPath: o.testData } : {}), ...(opts.cacheDir ? { cacheDir: opts.cacheDir } : {}), ...(prior ? { expectClasses: prior.classes } : {}),
    onProgress: (done, total) => (decode ??= progress.phase('decode', total, 'images')).update(done),
  });
  decode?.end();
  emit({ type: 'data', source: data.source, classes: data.classes, train: data.train.count, val: data.val.count, ...(data.test ? { test: data.test.count } : {}), skipped: data.skipped });
  for (const w of data.warnings) emit({ type: 'warning', message: w });
  const cfg = prior ?? resolveConfig(o, pm, data.classes);
  if (data.train.count < cfg.batchSize) throw new Error(`the training split has ${data.train.count} images, fewer than one batch of ${cfg.batchSize}: lower --batch-size`);
  checkMemory(stepActivationBytes(pm.blocks, cfg.batchSize), `a training step of ${cfg.batchSize} images of [${pm.inputShape.join('×')}]`, 'Lower --batch-size (or the image size).');
  const configPath = writeRunConfig(cfg, runtimeChoices(opts), data, resumed ? resumed.header.epoch + 1 : 0);
  emit({ type: 'config', config: cfg, path: configPath });
  const steps = Math.min(Math.floor(data.train.count / cfg.batchSize), cfg.maxStepsPerEpoch ?? Infinity);
  const bnWarning = runningStatsWarning({ blocks: pm.blocks, fromScratch: pm.fromScratch, ...(cfg.bnMomentum !== undefined ? { bnMomentum: cfg.bnMomentum } : {}), totalSteps: steps * cfg.epochs });
  if (bnWarning) emit({ type: 'warning', message: bnWarning });

  // The head block's J-way map from the pretrained classifier (training images only).
  let headInit: MatchedClassifier | undefined;
  if (cfg.method === 'sff' && cfg.headBlock && (cfg.headInit ?? 'random') === 'matched' && !resumed) {
    headInit = await matchPretrainedClassifier(pm, data.train, cfg.classes.length, data.preprocess, rt);
    emit({ type: 'head-init', classes: cfg.classes, ...(headInit ? { matched: { source: headInit.source, meanProb: headInit.meanProb, images: headInit.images } } : {}) });
  }
  // One trainer per block, and who runs them (this thread, or a pipeline of worker threads); the run state fresh or from the checkpoint.
  const { trainers, executor } = await startExecutor(pm, cfg, o, rt, data, emit, progress, signal, headInit);
  try {
    const blockNames = trainers.map((t) => t.block.name);
    const run: RunState = { history: [], best: { epoch: -1, states: await executor.weights() }, stop: new EarlyStopping(undefined, cfg.stopPatience), startEpoch: 0 };
    if (resumed) {
      await restoreRunState(resumed, trainers, executor, run);
      emit({ type: 'resume', fromEpoch: run.startEpoch + 1, out: cfg.out });
    }
    // Rewritten from the history: a resumed run drops lines of epochs after its checkpoint, a new one starts empty.
    writeMetricsFiles(cfg.out, run.history, blockNames);

    const valBatches = Math.ceil(data.val.count / cfg.batchSize);
    progress.plan({ epochsLeft: cfg.epochs - run.startEpoch, epochs: cfg.epochs, stepsPerEpoch: steps, valBatches, exportCheck: !opts.noExport });
    const stoppedEarly = await runEpochs({ cfg, trainers, data, run, executor, steps, emit, progress, ...(signal ? { signal } : {}) });
    // Stopped by the signal before the last epoch (the unfinished epoch was dropped).
    const interrupted = !!signal?.aborted && !stoppedEarly && run.history.length < cfg.epochs;

    const best = run.best.epoch >= 0 ? run.history[run.best.epoch] : run.history.at(-1);
    const result: FinetuneResult = {
      out: cfg.out, config: cfg, history: run.history, best, peakRssMB: peakRssMB(), trainableParams: trainableParams(trainers), stoppedEarly,
      ...(interrupted ? { interrupted } : {}),
      blocks: trainers.map((t) => ({ index: t.block.index, name: t.block.name, params: t.layout.total - t.headParamCount, headParams: t.headParamCount, frozen: isFrozen(cfg, t.block) })),
    };
    // Export (and test) the best validation epoch's weights.
    if (best) await executor.setWeights(run.best.states);
    let model: Model | undefined;
    let valGoodness: SplitGoodness | undefined; // the exported weights' validation goodness, computed once
    if (!opts.noExport && best) {
      const { exported, valGoodness: vg, ...outcome } = await exportBest(pm, trainers, executor, run.best, best, data, cfg, rt, progress);
      Object.assign(result, outcome);
      model = exported;
      valGoodness = vg;
      emit({ type: 'export', path: outcome.modelPath, sidecar: outcome.sidecarPath, check: outcome.exportCheck, heads: outcome.exportedHeads, ...(outcome.latency ? { latency: outcome.latency } : {}) });
    }
    if (data.test && best) result.test = await reportTest(model, valGoodness);
    writeSummary(result);
    emit({ type: 'summary', result });
    if (interrupted) emit({ type: 'interrupted', out: cfg.out, epochs: run.history.length, ...(result.modelPath ? { exportedEpoch: run.best.epoch + 1 } : {}) });
    return result;

    /** Test accuracy of the exported weights, per block, per ensemble rule and of model.onnx: once, after every choice was made. */
    async function reportTest(exported: Model | undefined, val: SplitGoodness | undefined) {
      const session = exported ? await createSession(exported, rt) : undefined;
      try {
        return await testReport({
          evaluate: (set, eo) => executor.evaluate(set, eo),
          layerIdx: trainers.flatMap((t, k) => (t.role === 'layer' ? [k] : [])),
          val: data.val,
          test: data.test!,
          source: data.source,
          classes: cfg.classes.length,
          batchSize: cfg.batchSize,
          mean: [...data.preprocess.mean],
          std: [...data.preprocess.std],
          rule: cfg.ensemble,
          weights: best!.ensemble.weights,
          ...(val ? { valGoodness: val } : {}),
          ...(session ? { exported: { session, inputName: pm.inputName } } : {}),
        });
      } finally {
        await session?.release();
      }
    }
  } finally {
    await executor.close();
  }
}
