/**
 * Everything a run settles before its first step: the resumed checkpoint (if any), the device,
 * the model and its blocks, the run folder (claimed before any data is decoded, so refusals come
 * first), the data, and the configuration written to config.json.
 */
import { resolve } from 'node:path';
import { prepareData, type PreparedData } from '../data/index.js';
import { checkDevice, type RuntimeOptions } from '../runtime/session.js';
import { pipelineDeviceBlocker } from './pipeline/executor.js';
import { checkMemory, stepActivationBytes } from '../util/limits.js';
import { prepareModel, type PreparedModel } from './model.js';
import { defaultOut, resolveConfig, resumedOptions, splitFractions, type FinetuneOptions } from './options.js';
import type { RunConfig } from './runConfig.js';
import { checkFreezeNames, styleOf } from './validate.js';
import { openRunFolder, resumedConfig, type RunFolder } from './runFolder.js';
import { readRunCheckpoint, type RunCheckpoint } from './runState.js';
import { runtimeChoices, writeRunConfig } from './configFile.js';
import { runningStatsWarning } from './batchnorm.js';
import type { RunProgress } from './progress.js';
import type { FinetuneEvent } from './events.js';

export interface RunSetup {
  /** The options as the run uses them (a resumed run's own, with what may change on resume). */
  options: FinetuneOptions;
  cfg: RunConfig;
  pm: PreparedModel;
  data: PreparedData;
  rt: RuntimeOptions;
  resumed: RunCheckpoint | undefined;
  /** Training steps per epoch. */
  steps: number;
}

export async function setUpRun(opts: FinetuneOptions, emit: (e: FinetuneEvent) => void, progress: RunProgress, held: { folder?: RunFolder }): Promise<RunSetup> {
  const note = (message: string) => emit({ type: 'note', message });
  // A resumed run keeps its configuration, in the folder given (wherever it was first written);
  // only --epochs and inputs that moved may change: see resumedConfig.
  const resumeDir = opts.resume !== undefined ? resolve(opts.resume) : undefined;
  const resumed = resumeDir ? readRunCheckpoint(resumeDir) : undefined;
  const prior = resumed ? resumedConfig(resumed.header.config, opts, resumeDir!) : undefined;
  const o = resumedOptions(opts, prior);
  const rt: RuntimeOptions = { device: opts.device, threads: opts.threads, memArena: opts.memArena };

  pipelineDeviceBlocker(opts.pipeline ?? 'off', opts.device); // an option conflict needs no GPU to be refused
  await checkDevice(rt); // a device that cannot run fails here, before any work
  const pm = await prepareModel(o.model, { blocks: o.blocks ?? 'auto', imageSize: o.imageSize, dataPath: o.data });
  // Block names are known only now; a bad --freeze is still refused before anything is reported.
  if ((o.method ?? 'sff') !== 'bp') checkFreezeNames(o.freeze ?? [], pm.headBlock ? [...pm.blocks, pm.headBlock] : pm.blocks, styleOf(opts));
  emit({ type: 'model', source: o.model, description: pm.description, blocks: pm.blocks.length });
  if (pm.imageSizeChoice.source !== 'graph') note(`input  ${pm.imageSizeChoice.reason}`);
  held.folder = openRunFolder({
    out: prior?.out ?? resolve(opts.out ?? defaultOut(pm.shortName)),
    resume: !!prior, overwrite: !!opts.overwrite, inputs: [o.model, o.data, ...(o.testData ? [o.testData] : [])], log: note,
  });

  const decode = progress.lazyPhase('decode', 'images');
  const fractions = prior ? { valFraction: prior.valFraction, testFraction: prior.testFraction ?? 0 } : splitFractions(o);
  const data = await prepareData({
    path: o.data, imageSize: pm.imageSize, channels: pm.inputShape[0]!, normalize: o.normalize ?? pm.normalize, seed: o.seed, ...fractions,
    ...(o.subset ? { subset: o.subset } : {}), ...(o.testData ? { testPath: o.testData } : {}), ...(opts.cacheDir ? { cacheDir: opts.cacheDir } : {}), ...(prior ? { expectClasses: prior.classes } : {}),
    onProgress: decode.update,
  });
  decode.end();
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
  return { options: o, cfg, pm, data, rt, resumed, steps };
}
