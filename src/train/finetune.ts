/**
 * The main job: SFF fine-tuning of an ONNX classifier, as a pipeline:
 * run setup (resume, model and blocks, run folder, data, config.json) → one trainer per block →
 * epoch loop → export and its check → test report → summary.
 * It reports through structured events (./events.ts) and prints nothing unless asked (`quiet: false`).
 */
import { validateFinetuneOptions } from './validate.js';
import { explainWriteFault, type RunFolder } from './runFolder.js';
import { setUpRun } from './runSetup.js';
import { headInitFor } from './classifierInit.js';
import { testRun } from './testReport.js';
import { isFrozen } from './stages.js';
import { restoreRunState, type RunState } from './runState.js';
import { runEpochs, trainableParams } from './loop.js';
import { startExecutor } from './executor.js';
import { exportBest } from './exportCheck.js';
import { createReporter, writeSummary, type FinetuneResult } from './report.js';
import { peakRssMB } from './metrics.js';
import { writeMetricsFiles } from './metricsFiles.js';
import { RunProgress } from './progress.js';
import { EarlyStopping } from './schedule.js';
import type { FinetuneOptions } from './options.js';
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
  const emit = (e: FinetuneEvent) => (print?.(e), opts.onEvent?.(e));
  const signal = opts.signal;
  signal?.throwIfAborted();
  const progress = new RunProgress(emit);
  const { options: o, cfg, pm, data, rt, resumed, steps } = await setUpRun(opts, emit, progress, held);

  // One trainer per block, and who runs them (this thread, or a pipeline of worker threads); the run state fresh or from the checkpoint.
  const headInit = await headInitFor(cfg, pm, data, rt, !!resumed, emit);
  const { trainers, executor } = await startExecutor(pm, cfg, o, rt, data, emit, progress, signal, headInit);
  try {
    const run: RunState = { history: [], best: { epoch: -1, states: await executor.weights() }, stop: new EarlyStopping(undefined, cfg.stopPatience), startEpoch: 0 };
    if (resumed) {
      await restoreRunState(resumed, trainers, executor, run);
      emit({ type: 'resume', fromEpoch: run.startEpoch + 1, out: cfg.out });
    }
    // Rewritten from the history: a resumed run drops lines of epochs after its checkpoint, a new one starts empty.
    writeMetricsFiles(cfg.out, run.history, trainers.map((t) => t.block.name));

    progress.plan({ epochsLeft: cfg.epochs - run.startEpoch, epochs: cfg.epochs, stepsPerEpoch: steps, valBatches: Math.ceil(data.val.count / cfg.batchSize), exportCheck: !opts.noExport });
    const stoppedEarly = await runEpochs({ cfg, trainers, data, run, executor, steps, emit, progress, ...(signal ? { signal } : {}) });
    // Stopped by the signal before the last epoch (the unfinished epoch was dropped).
    const interrupted = !!signal?.aborted && !stoppedEarly && run.history.length < cfg.epochs;

    const best = run.best.epoch >= 0 ? run.history[run.best.epoch] : run.history.at(-1);
    const result: FinetuneResult = {
      out: cfg.out, config: cfg, history: run.history, best, peakRssMB: peakRssMB(), trainableParams: trainableParams(trainers), stoppedEarly,
      ...(interrupted ? { interrupted } : {}),
      blocks: trainers.map((t) => ({ index: t.block.index, name: t.block.name, params: t.layout.total - t.headParamCount, headParams: t.headParamCount, frozen: isFrozen(cfg, t.block) })),
    };
    if (best) {
      // Export and test the best validation epoch's weights; the export's validation goodness is reused by the test report.
      await executor.setWeights(run.best.states);
      const exported = opts.noExport ? undefined : await exportBest(pm, trainers, executor, run.best, best, data, cfg, rt, progress);
      if (exported) {
        const { exported: _model, valGoodness: _valGoodness, ...outcome } = exported; // the model and its goodness are not part of the result
        Object.assign(result, outcome);
        emit({ type: 'export', path: outcome.modelPath, sidecar: outcome.sidecarPath, check: outcome.exportCheck, heads: outcome.exportedHeads, ...(outcome.latency ? { latency: outcome.latency } : {}) });
      }
      if (data.test)
        result.test = await testRun({
          evaluate: (set, eo) => executor.evaluate(set, eo), layerIdx: trainers.flatMap((t, k) => (t.role === 'layer' ? [k] : [])),
          val: data.val, test: data.test, source: data.source, classes: cfg.classes.length, batchSize: cfg.batchSize,
          mean: [...data.preprocess.mean], std: [...data.preprocess.std], rule: cfg.ensemble, weights: best.ensemble.weights,
          ...(exported ? { valGoodness: exported.valGoodness, exported: { model: exported.exported, inputName: pm.inputName, runtime: rt } } : {}),
        });
    }
    writeSummary(result);
    emit({ type: 'summary', result });
    if (interrupted) emit({ type: 'interrupted', out: cfg.out, epochs: run.history.length, ...(result.modelPath ? { exportedEpoch: run.best.epoch + 1 } : {}) });
    return result;
  } finally {
    await executor.close();
  }
}
