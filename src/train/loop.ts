/**
 * The epoch loop: train every block on each minibatch, validate, schedule learning rates,
 * keep the best epoch, checkpoint. Running the blocks on one minibatch is a `BatchStepper`,
 * the one seam a different executor (blocks pipelined on worker threads) replaces.
 */
import { batches, type PreparedData } from '../data/index.js';
import { imagesTensor, labelsTensor, type Tensor } from '../runtime/tensors.js';
import { writeFileAtomic } from '../util/fs.js';
import { join } from 'node:path';
import { collectGoodness } from './evaluate.js';
import { ensembleReport, peakRssMB, RunningMetrics, splitMetrics, type EpochMetrics } from './metrics.js';
import { writeMetricsFiles } from './metricsFiles.js';
import { saveRunState, weightsOfAll, type RunState } from './runState.js';
import { curvesSvg, reportHtml } from './curves.js';
import type { RunProgress } from './progress.js';
import type { BlockRunner } from './runner.js';
import type { RunConfig } from './options.js';
import type { FinetuneEvent } from './events.js';
import type { Trainer } from './stages.js';
import { lrFactor } from './schedule.js';

export class NonFiniteLossError extends Error {
  override name = 'NonFiniteLossError';
}

/** One block's part of a minibatch step. `goodness` is valid until that block's next step. */
export interface BlockStepResult {
  loss: number;
  goodness: Float32Array;
  /** Wall time of the block's own step. */
  seconds: number;
}

/** Runs every block on one minibatch (block k reads block k−1's output) and returns each block's result, in block order. */
export interface BatchStepper {
  step(x: Tensor, labels: Tensor): Promise<BlockStepResult[]>;
}

/** The blocks one after another in this thread. */
export function sequentialStepper(runners: BlockRunner[]): BatchStepper {
  return {
    async step(x0, labels) {
      const results: BlockStepResult[] = [];
      let x = x0;
      for (const runner of runners) {
        const ts = performance.now();
        const r = await runner.trainStep(x, labels);
        results.push({ loss: r.loss, goodness: r.goodness, seconds: (performance.now() - ts) / 1000 });
        x = r.next;
      }
      return results;
    },
  };
}

export interface LoopContext {
  cfg: RunConfig;
  trainers: Trainer[];
  data: PreparedData;
  run: RunState;
  stepper: BatchStepper;
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
    const running = await trainEpoch(ctx, epoch);
    if (ctx.signal?.aborted) return false;
    const trainSeconds = (performance.now() - t0) / 1000;
    const m = await validate(ctx, epoch, running, trainSeconds, t0);
    run.history.push(m);
    const halt = run.stop.observe(m.ensemble.acc, epoch);
    if (run.stop.state.bestEpoch === epoch) run.best = { epoch, states: weightsOfAll(trainers) };
    writeMetricsFiles(cfg.out, run.history, blocks);
    saveRunState(cfg, trainers, epoch, run);
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
  trainers.forEach((t) => (t.seconds = 0));
  const dims = [data.train.channels, data.train.height, data.train.width];
  const { mean, std } = data.preprocess;
  const phase = ctx.progress.phase('train', steps, 'steps', { epoch: epoch + 1, epochs: cfg.epochs });
  phase.update(0);
  const t0 = performance.now();
  let step = 0;
  let lossSum = 0;
  for await (const batch of batches(data.train, { batchSize: cfg.batchSize, shuffle: true, seed: cfg.seed, epoch, augment: cfg.augment, dropLast: true, mean, std })) {
    if (step >= steps) break;
    const labelNums = Array.from(batch.y.subarray(0, batch.n), Number);
    // Step-wise shape (warm-up, cosine) on each block's base rate, which the plateau rule may have lowered.
    const factor = lrFactor(cfg.schedule ?? 'plateau', epoch * steps + step, cfg.epochs * steps, Math.round((cfg.warmup ?? 0) * steps));
    for (const t of trainers) t.runner.lr = t.plateau.state.lr * factor;
    const results = await ctx.stepper.step(imagesTensor(batch.x, batch.n, dims), labelsTensor(batch.y, batch.n));
    results.forEach((r, k) => {
      const t = trainers[k]!;
      t.seconds += r.seconds;
      if (!Number.isFinite(r.loss))
        throw new NonFiniteLossError(
          `block ${t.block.index} (${t.block.name}) produced a non-finite loss (${r.loss}) at epoch ${epoch + 1}, step ${step + 1}. ` +
            `The last good checkpoint (${ctx.run.history.length ? `epoch ${ctx.run.history.length}` : 'none yet'}) is kept in ${cfg.out}. Try a lower --lr (now ${t.runner.lr}).`,
        );
      running.addBlock(k, r.loss, r.goodness, labelNums, t.role === 'layer');
    });
    running.endBatch(labelNums);
    step++;
    const losses = results.map((r) => r.loss);
    lossSum += losses.reduce((a, l) => a + l, 0) / losses.length;
    ctx.emit({ type: 'step', epoch, step, steps, losses });
    // The loss shown: this epoch's running mean of the per-block mean step loss (what the epoch line calls "train loss").
    phase.update(step, { imagesPerSecond: (step * cfg.batchSize) / Math.max((performance.now() - t0) / 1000, 1e-9), meanLoss: lossSum / step });
    if (ctx.signal?.aborted) break;
  }
  phase.end();
  return running;
}

/** Validation of one epoch, the learning-rate schedule's step, and the epoch's metrics. */
async function validate(ctx: LoopContext, epoch: number, running: RunningMetrics, trainSeconds: number, t0: number): Promise<EpochMetrics> {
  const { cfg, trainers, data, steps } = ctx;
  const J = cfg.classes.length;
  const layerIdx = trainers.flatMap((t, k) => (t.role === 'layer' ? [k] : []));
  const probeIdx = trainers.findIndex((t) => t.role === 'probe');
  const phase = ctx.progress.phase('validate', Math.ceil(data.val.count / cfg.batchSize), 'batches', { epoch: epoch + 1, epochs: cfg.epochs });
  let done = 0;
  const val = await collectGoodness(trainers.map((t) => t.runner), data.val, {
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
  // The plateau rule lowers each block's base rate between epochs; a cosine run follows its curve alone.
  const lrs = trainers.map((t, k) => ((cfg.schedule ?? 'plateau') === 'plateau' ? (t.runner.lr = t.plateau.observe(valMetrics.loss[k]!)) : t.runner.lr));
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
    blockImagesPerSecond: trainers.map((t) => (steps * cfg.batchSize) / Math.max(t.seconds, 1e-9)),
    peakRssMB: peakRssMB(),
    time: new Date().toISOString(),
  };
}

/** Trainable parameters of a run, aux heads included (a frozen block's layout holds only its head). */
export function trainableParams(trainers: Trainer[]): number {
  return trainers.reduce((a, t) => a + t.runner.layout.total, 0);
}
