/**
 * The main job: SFF fine-tuning of an ONNX classifier, as a pipeline:
 * data → model and blocks → one trainer per block → epoch loop → export and its check → report.
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { prepareData } from '../data/index.js';
import type { RuntimeOptions } from '../runtime/session.js';
import { prepareModel } from './model.js';
import { resolveConfig, resumedOptions, type FinetuneOptions } from './options.js';
import { isFrozen, type Trainer } from './stages.js';
import { readRunCheckpoint, restoreRunState, type RunState } from './runState.js';
import { runEpochs, trainableParams } from './loop.js';
import { startExecutor, type BlockExecutor } from './executor.js';
import type { PreparedData } from '../data/index.js';
import type { PreparedModel } from './model.js';
import type { FinetuneEvent, RunConfig } from './options.js';
import { exportBest } from './exportCheck.js';
import { exportCheckLine, summarise, type FinetuneResult } from './report.js';
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
  const data = await prepareData({
    path: o.data, imageSize: pm.imageSize, channels: pm.inputShape[0]!, normalize: o.normalize ?? pm.normalize, seed: o.seed, valFraction: o.valFraction,
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

  // One trainer per block, and who runs them (this thread, or a pipeline of worker threads).
  const { trainers, executor } = await startExecutor(pm, cfg, o, rt, data, log);
  try {
    return await trainAndExport({ opts, cfg, pm, data, rt, resumed, steps, log, emit }, trainers, executor);
  } finally {
    await executor.close();
  }
}

interface RunInputs {
  opts: FinetuneOptions;
  cfg: RunConfig;
  pm: PreparedModel;
  data: PreparedData;
  rt: RuntimeOptions;
  resumed: ReturnType<typeof readRunCheckpoint> | undefined;
  steps: number;
  log: (s: string) => void;
  emit: (e: FinetuneEvent) => void;
}

/** The run state fresh or from the checkpoint, the epochs, the export and the report. */
async function trainAndExport({ opts, cfg, pm, data, rt, resumed, steps, log, emit }: RunInputs, trainers: Trainer[], executor: BlockExecutor): Promise<FinetuneResult> {
  const run: RunState = { history: [], best: { epoch: -1, states: await executor.weights() }, stop: new EarlyStopping(undefined, cfg.stopPatience), startEpoch: 0 };
  const metricsPath = join(cfg.out, 'metrics.jsonl');
  if (resumed) {
    await restoreRunState(resumed, trainers, executor, run);
    // Drop metric lines of epochs after the checkpoint (a run killed mid-epoch may have written none, but be exact).
    writeFileSync(metricsPath, run.history.map((m) => JSON.stringify(m) + '\n').join(''));
    log(`resume from epoch ${run.startEpoch} (checkpoint in ${cfg.out})`);
  } else if (existsSync(metricsPath)) rmSync(metricsPath);

  const stoppedEarly = await runEpochs({ cfg, trainers, data, run, executor, steps, emit, log });

  const best = run.best.epoch >= 0 ? run.history[run.best.epoch] : run.history.at(-1);
  const result: FinetuneResult = {
    out: cfg.out, config: cfg, history: run.history, best, peakRssMB: peakRssMB(), trainableParams: trainableParams(trainers), stoppedEarly,
    blocks: trainers.map((t) => ({ name: t.block.name, params: t.layout.total - t.headParamCount, headParams: t.headParamCount, frozen: isFrozen(cfg, t.block) })),
  };
  if (!opts.noExport && best) {
    Object.assign(result, await exportBest(pm, trainers, executor, run.best, best.ensemble.weights, data, cfg, rt));
    log(exportCheckLine(result.exportCheck!));
  }
  summarise(result, trainers, log);
  return result;
}
