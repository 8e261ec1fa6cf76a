/**
 * The epoch loop: train every block on each minibatch, validate, schedule learning rates,
 * keep the best epoch, checkpoint. Who runs the blocks is a `BlockExecutor` (train/executor.ts):
 * serially on this thread, or pipelined on worker threads with several minibatches in flight.
 */
import { batches, type PreparedData } from '../data/index.js';
import { writeFileAtomic } from '../util/fs.js';
import { join } from 'node:path';
import { ensembleReport, peakRssMB, RunningMetrics, splitMetrics, type EpochMetrics } from './metrics.js';
import { writeMetricsFiles } from './metricsFiles.js';
import { saveRunState, type RunState } from './runState.js';
import { curvesSvg, reportHtml } from './curves.js';
import type { RunProgress } from './progress.js';
import type { BatchResult, BlockExecutor } from './blockExecutor.js';
import type { RunConfig } from './options.js';
import type { FinetuneEvent } from './events.js';
import type { Trainer } from './stages.js';
import { lrFactor } from './schedule.js';

export class NonFiniteLossError extends Error {
  override name = 'NonFiniteLossError';
}

export interface LoopContext {
  cfg: RunConfig;
  trainers: Trainer[];
  data: PreparedData;
  run: RunState;
  executor: BlockExecutor;
  /** Steps per epoch. */
  steps: number;
  emit: (e: FinetuneEvent) => void;
  progress: RunProgress;
  /** Aborted: stop after the step in flight and drop the unfinished epoch (the checkpoint keeps the last finished one). */
  signal?: AbortSignal;
}

/** Trains from `run.startEpoch` to the last epoch or an early stop; returns whether it stopped early. */
export async function runEpochs(ctx: LoopContext): Promise<boolean> {
  const { cfg, trainers, run } = ctx;
  const blocks = trainers.map((t) => t.block.name);
  for (let epoch = run.startEpoch; epoch < cfg.epochs; epoch++) {
    const t0 = performance.now();
    await ctx.executor.takeSeconds();
    const running = await trainEpoch(ctx, epoch);
    if (ctx.signal?.aborted) return false;
    const trainSeconds = (performance.now() - t0) / 1000;
    const blockSeconds = await ctx.executor.takeSeconds();
    const m = await validate(ctx, epoch, running, trainSeconds, blockSeconds, t0);
    run.history.push(m);
    const halt = run.stop.observe(m.ensemble.acc, epoch);
    if (run.stop.state.bestEpoch === epoch) run.best = { epoch, states: await ctx.executor.weights() };
    writeMetricsFiles(cfg.out, run.history, blocks);
    saveRunState(cfg, trainers, await ctx.executor.snapshot(), epoch, run);
    writeFileAtomic(join(cfg.out, 'curves.svg'), curvesSvg(run.history, blocks, `${cfg.method.toUpperCase()}: loss and accuracy per block and ensemble`));
    writeFileAtomic(join(cfg.out, 'report.html'), reportHtml(run.history, blocks, cfg, run.best.epoch + 1));
    ctx.emit({ type: 'epoch', metrics: m, blocks, epochs: cfg.epochs });
    if (halt) {
      ctx.emit({ type: 'early-stop', patience: cfg.stopPatience, bestAccuracy: run.stop.state.best, bestEpoch: run.stop.state.bestEpoch + 1 });
      return true;
    }
  }
  return false;
}

async function trainEpoch(ctx: LoopContext, epoch: number): Promise<RunningMetrics> {
  const { cfg, trainers, data, steps } = ctx;
  const J = cfg.classes.length;
  const running = new RunningMetrics(trainers.length, J, cfg.batchSize);
  const dims = [data.train.channels, data.train.height, data.train.width];
  const { mean, std } = data.preprocess;
  const phase = ctx.progress.phase('train', steps, 'steps', { epoch: epoch + 1, epochs: cfg.epochs });
  phase.update(0);
  const t0 = performance.now();
  let step = 0;
  let lossSum = 0;
  // Minibatches handed to the executor and not yet read back: one when serial, one per stage and one more when pipelined.
  const inFlight: { done: Promise<BatchResult>; labels: number[] }[] = [];
  const readBack = async () => {
    const { done, labels } = inFlight.shift()!;
    const { losses, goodness } = await done;
    trainers.forEach((t, k) => {
      const loss = losses[k]!;
      if (!Number.isFinite(loss))
        throw new NonFiniteLossError(
          `block ${t.block.index} (${t.block.name}) produced a non-finite loss (${loss}) at epoch ${epoch + 1}, step ${step + 1}. ` +
            `The last good checkpoint (${ctx.run.history.length ? `epoch ${ctx.run.history.length}` : 'none yet'}) is kept in ${cfg.out}. Try a lower --lr (now ${t.plateau.state.lr}).`,
        );
      running.addBlock(k, loss, goodness[k]!, labels, t.role === 'layer');
    });
    running.endBatch(labels);
    step++;
    lossSum += losses.reduce((a, l) => a + l, 0) / losses.length;
    ctx.emit({ type: 'step', epoch, step, steps, losses });
    // The loss shown: this epoch's running mean of the per-block mean step loss (what the epoch line calls "train loss").
    phase.update(step, { imagesPerSecond: (step * cfg.batchSize) / Math.max((performance.now() - t0) / 1000, 1e-9), meanLoss: lossSum / step });
  };
  const schedule = cfg.schedule ?? 'plateau';
  const warmupSteps = Math.round((cfg.warmup ?? 0) * steps);
  const shaped = schedule !== 'plateau' || warmupSteps > 0;
  let submitted = 0;
  for await (const batch of batches(data.train, { batchSize: cfg.batchSize, shuffle: true, seed: cfg.seed, epoch, augment: cfg.augment, dropLast: true, mean, std })) {
    if (submitted >= steps || ctx.signal?.aborted) break;
    while (inFlight.length >= ctx.executor.depth) await readBack();
    // Step-wise shape (warm-up, cosine) on each block's base rate, which the plateau rule may have lowered.
    if (shaped) await ctx.executor.setLr(trainers.map((t) => t.plateau.state.lr * lrFactor(schedule, epoch * steps + submitted, cfg.epochs * steps, warmupSteps)));
    inFlight.push({ done: ctx.executor.train(batch.x, dims, batch.n, epoch * steps + submitted + 1, batch.y), labels: Array.from(batch.y.subarray(0, batch.n), Number) });
    submitted++;
  }
  // Also when aborted: the minibatches in flight finish (a checkpoint is only written between epochs, so nothing is half-kept).
  while (inFlight.length) await readBack();
  phase.end();
  return running;
}

/** Validation of one epoch, the learning-rate schedule's step, and the epoch's metrics. */
async function validate(ctx: LoopContext, epoch: number, running: RunningMetrics, trainSeconds: number, blockSeconds: number[], t0: number): Promise<EpochMetrics> {
  const { cfg, trainers, data, steps } = ctx;
  const J = cfg.classes.length;
  const layerIdx = trainers.flatMap((t, k) => (t.role === 'layer' ? [k] : []));
  const probeIdx = trainers.findIndex((t) => t.role === 'probe');
  const phase = ctx.progress.phase('validate', Math.ceil(data.val.count / cfg.batchSize), 'batches', { epoch: epoch + 1, epochs: cfg.epochs });
  let done = 0;
  const val = await ctx.executor.evaluate(data.val, {
    batchSize: cfg.batchSize,
    classes: J,
    mean: data.preprocess.mean,
    std: data.preprocess.std,
    onBatch: () => phase.update(++done),
  });
  phase.end();
  const valMetrics = splitMetrics(val, J);
  const ens = ensembleReport({ labels: val.labels, goodness: layerIdx.map((k) => val.goodness[k]!) }, J, cfg.ensemble);
  valMetrics.layers = ens.layers;
  if (probeIdx >= 0) valMetrics.layers.head = valMetrics.acc[probeIdx]!;
  const weights = trainers.map((t, k) => (t.role === 'layer' ? ens.weights[layerIdx.indexOf(k)]! : 0));
  // The plateau rule lowers each block's base rate between epochs; a cosine run follows its curve alone
  // (set per step; the epoch records the rate of its last step).
  const cosine = (cfg.schedule ?? 'plateau') !== 'plateau';
  const lastFactor = lrFactor(cfg.schedule ?? 'plateau', (epoch + 1) * steps - 1, cfg.epochs * steps, Math.round((cfg.warmup ?? 0) * steps));
  const lrs = trainers.map((t, k) => (cosine ? t.plateau.state.lr * lastFactor : t.plateau.observe(valMetrics.loss[k]!)));
  await ctx.executor.setLr(lrs);
  return {
    epoch: epoch + 1,
    train: running.result(),
    val: valMetrics,
    ensemble: { rule: cfg.ensemble, weights, acc: ens.acc },
    lr: lrs,
    seconds: (performance.now() - t0) / 1000,
    trainSeconds,
    steps,
    stepSeconds: trainSeconds / Math.max(steps, 1),
    trainableParams: trainableParams(trainers),
    imagesPerSecond: (steps * cfg.batchSize) / trainSeconds,
    blockImagesPerSecond: blockSeconds.map((s) => (steps * cfg.batchSize) / Math.max(s, 1e-9)),
    peakRssMB: peakRssMB(),
    time: new Date().toISOString(),
  };
}

/** Trainable parameters of a run, aux heads included (a frozen block's layout holds only its head). */
export function trainableParams(trainers: Trainer[]): number {
  return trainers.reduce((a, t) => a + t.layout.total, 0);
}
