/**
 * One training run in its own process (used by `sff-finetune bench`): runs `finetune` with the
 * options it is given and reports the result with the process's own peak resident memory.
 *
 *   node dist/bench/train-worker.js --bench-child '<FinetuneOptions as JSON>'
 */
import { fileURLToPath } from 'node:url';
import { finetune } from '../train/finetune.js';
import type { FinetuneOptions } from '../train/options.js';
import type { EpochMetrics } from '../train/metrics.js';
import type { RunConfig } from '../train/options.js';
import { childMain, hwmMB, maxRssMB, resetPeakRss, runChild, type ChildOptions } from './child.js';

export interface WorkerResult {
  config: RunConfig;
  history: EpochMetrics[];
  best: EpochMetrics | undefined;
  blocks: { name: string; params: number; headParams: number; frozen: boolean }[];
  trainableParams: number;
  /** This process's peak resident memory (MB): the run's own, training and export check included. */
  peakRssMB: number;
  /** Peak resident memory at the end of the last training epoch (the trainer's own `peakRssMB`, graph building included). */
  trainingPeakRssMB: number;
  /**
   * Peak resident memory of training alone: the high-water mark is reset (Linux /proc/self/clear_refs)
   * after the first training step, so graph building and its shape probes are left out; the first
   * step's one-off allocations too, but every later step has the same shapes. NaN where unsupported.
   */
  steadyPeakRssMB: number;
  /** Peak up to the end of the first training step (graph building included). */
  buildPeakRssMB: number;
  exportCheck?: { maxAbsDiff: number; accuracy: number; trainingAccuracy: number; scale: number };
  stoppedEarly: boolean;
  wallSeconds: number;
}

export async function trainInProcess(opts: FinetuneOptions): Promise<WorkerResult> {
  const t0 = performance.now();
  let buildPeak = NaN;
  let reset = false;
  const r = await finetune({
    ...opts,
    quiet: false,
    onEvent: (e) => {
      if (e.type === 'step' && Number.isNaN(buildPeak)) {
        buildPeak = hwmMB();
        reset = resetPeakRss();
      }
    },
  });
  const steady = reset ? hwmMB() : NaN;
  return {
    config: r.config,
    history: r.history,
    best: r.best,
    blocks: r.blocks,
    trainableParams: r.trainableParams,
    peakRssMB: Math.max(maxRssMB(), buildPeak || 0, steady || 0),
    trainingPeakRssMB: r.history.at(-1)?.peakRssMB ?? NaN,
    steadyPeakRssMB: steady,
    buildPeakRssMB: buildPeak,
    ...(r.exportCheck ? { exportCheck: r.exportCheck } : {}),
    stoppedEarly: r.stoppedEarly,
    wallSeconds: (performance.now() - t0) / 1000,
  };
}

const ENTRY = fileURLToPath(import.meta.url);

/** Runs one training in a child process; its log goes to `child.logFile`. */
export function trainInChild(opts: FinetuneOptions, child: ChildOptions = {}): Promise<WorkerResult> {
  return runChild<WorkerResult>(ENTRY, opts, child);
}

if (process.argv[1] === ENTRY) childMain(trainInProcess);
