/**
 * The main job: SFF fine-tuning of an ONNX classifier, as a pipeline:
 * data → model and blocks → one trainer per block → epoch loop → export and its check → report.
 */
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { prepareData } from '../data/index.js';
import { checkDevice, type RuntimeOptions } from '../runtime/session.js';
import { checkMemory, stepActivationBytes } from '../util/limits.js';
import { prepareModel } from './model.js';
import { defaultOut, resolveConfig, resumedOptions, type FinetuneOptions } from './options.js';
import { checkFreezeNames, styleOf, validateFinetuneOptions } from './validate.js';
import { explainWriteFault, openRunFolder, resumeCommand, resumedConfig, type RunFolder } from './runFolder.js';
import { buildTrainers, isFrozen } from './stages.js';
import { readRunCheckpoint, restoreRunState, weightsOfAll, type RunState } from './runState.js';
import { runEpochs, sequentialStepper, trainableParams } from './loop.js';
import { exportBest } from './exportCheck.js';
import { exportCheckLine, summarise, type FinetuneResult } from './report.js';
import { peakRssMB } from './metrics.js';
import { runningStatsWarning } from './batchnorm.js';
import { EarlyStopping } from './schedule.js';

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
  const emit = opts.onEvent ?? (() => {});
  const log = (message: string) => {
    if (!opts.quiet) console.log(message);
    emit({ type: 'log', message });
  };
  // A resumed run keeps its configuration, in the folder given (wherever it was first written);
  // only --epochs and inputs that moved may change: see resumedConfig.
  const resumeDir = opts.resume !== undefined ? resolve(opts.resume) : undefined;
  const resumed = resumeDir ? readRunCheckpoint(resumeDir) : undefined;
  const prior = resumed ? resumedConfig(resumed.header.config, opts, resumeDir!) : undefined;
  const o = resumedOptions(opts, prior);
  const rt: RuntimeOptions = { device: opts.device, threads: opts.threads, memArena: opts.memArena };

  await checkDevice(rt); // a device that cannot run fails here, before any work
  // Data, model and blocks, and the run's configuration.
  const pm = await prepareModel(o.model, { blocks: o.blocks ?? 'auto', imageSize: o.imageSize });
  log(`model  ${pm.description}`);
  if ((o.method ?? 'sff') !== 'bp') checkFreezeNames(o.freeze ?? [], pm.blocks, styleOf(opts));
  // The folder is claimed (locked, checked) before the data is decoded: refusals come first.
  held.folder = openRunFolder({
    out: prior?.out ?? resolve(opts.out ?? defaultOut(pm.shortName)),
    resume: !!prior, overwrite: !!opts.overwrite, inputs: [o.model, o.data, ...(o.testData ? [o.testData] : [])], log,
  });
  const data = await prepareData({
    path: o.data, imageSize: pm.imageSize, channels: pm.inputShape[0]!, normalize: o.normalize ?? pm.normalize, seed: o.seed, valFraction: o.valFraction,
    ...(o.subset ? { subset: o.subset } : {}), ...(o.testData ? { testPath: o.testData } : {}), ...(opts.cacheDir ? { cacheDir: opts.cacheDir } : {}), ...(prior ? { expectClasses: prior.classes } : {}),
  });
  log(`data   ${data.source}${data.skipped.length ? `; ${data.skipped.length} unreadable images skipped` : ''}`);
  for (const s of data.skipped.slice(0, 5)) log(`       skipped ${s.path}: ${s.reason}`);
  for (const w of data.warnings) log(`warning: ${w}`);
  const cfg = prior ?? resolveConfig(o, pm, data.classes);
  if (data.train.count < cfg.batchSize) throw new Error(`the training split has ${data.train.count} images, fewer than one batch of ${cfg.batchSize}: lower --batch-size`);
  log(`run    ${cfg.out}  (${cfg.method}, norm ${cfg.norm}, aux ${cfg.auxKernel}×${cfg.auxKernel}, lr ${cfg.lr}, batch ${cfg.batchSize}, ensemble ${cfg.ensemble}, seed ${cfg.seed})`);
  checkMemory(stepActivationBytes(pm.blocks, cfg.batchSize), `a training step of ${cfg.batchSize} images of [${pm.inputShape.join('×')}]`, 'Lower --batch-size (or the image size).');
  const steps = Math.min(Math.floor(data.train.count / cfg.batchSize), cfg.maxStepsPerEpoch ?? Infinity);
  const bnWarning = runningStatsWarning({ blocks: pm.blocks, fromScratch: pm.fromScratch, ...(cfg.bnMomentum !== undefined ? { bnMomentum: cfg.bnMomentum } : {}), totalSteps: steps * cfg.epochs });
  if (bnWarning) log(`warning: ${bnWarning}`);

  // One trainer per block; the run state fresh or from the checkpoint.
  const trainers = await buildTrainers(pm, cfg, rt, log);
  const run: RunState = { history: [], best: { epoch: -1, states: weightsOfAll(trainers) }, stop: new EarlyStopping(undefined, cfg.stopPatience), startEpoch: 0 };
  const metricsPath = join(cfg.out, 'metrics.jsonl');
  if (resumed) {
    restoreRunState(resumed, trainers, run);
    // Drop metric lines of epochs after the checkpoint (a run killed mid-epoch may have written none, but be exact).
    writeFileSync(metricsPath, run.history.map((m) => JSON.stringify(m) + '\n').join(''));
    log(`resume from epoch ${run.startEpoch} (checkpoint in ${cfg.out})`);
  } else if (existsSync(metricsPath)) rmSync(metricsPath);

  const stoppedEarly = await runEpochs({ cfg, trainers, data, run, stepper: sequentialStepper(trainers.map((t) => t.runner)), steps, emit, log, ...(opts.signal ? { signal: opts.signal } : {}) });
  // Stopped by the signal before the last epoch (the unfinished epoch was dropped).
  const interrupted = !!opts.signal?.aborted && !stoppedEarly && run.history.length < cfg.epochs;

  const best = run.best.epoch >= 0 ? run.history[run.best.epoch] : run.history.at(-1);
  const result: FinetuneResult = {
    out: cfg.out, config: cfg, history: run.history, best, peakRssMB: peakRssMB(), trainableParams: trainableParams(trainers), stoppedEarly,
    ...(interrupted ? { interrupted } : {}),
    blocks: trainers.map((t) => ({ name: t.block.name, params: t.runner.layout.total - t.headParamCount, headParams: t.headParamCount, frozen: isFrozen(cfg, t.block) })),
  };
  if (!opts.noExport && best) {
    Object.assign(result, await exportBest(pm, trainers, run.best, best.ensemble.weights, data, cfg, rt));
    log(exportCheckLine(result.exportCheck!));
  }
  summarise(result, trainers, log);
  if (interrupted) log(interruptedNote(cfg.out, run.history.length, result.modelPath ? run.best.epoch + 1 : undefined));
  await Promise.all(trainers.map((t) => t.runner.release()));
  return result;
}

/** What an interrupted run kept, and the command that continues it. */
function interruptedNote(out: string, epochs: number, exportedEpoch: number | undefined): string {
  if (!epochs) return 'interrupted before the first epoch finished: nothing to keep; start again to train';
  return (
    `interrupted: the checkpoint of epoch ${epochs} is kept in ${out}` +
    `${exportedEpoch ? `, and model.onnx holds the best epoch so far (${exportedEpoch})` : ''}. Continue with: ${resumeCommand(out)}`
  );
}
