/**
 * The epoch loop: train every block on each minibatch, validate, schedule learning rates,
 * keep the best epoch, checkpoint. Who runs the blocks is a `BlockExecutor` (train/executor.ts):
 * serially on this thread, or pipelined on worker threads with several minibatches in flight.
 */
import { batches, type PreparedData } from '../data/index.js';
import { writeFileAtomic } from '../util/fs.js';
import { join } from 'node:path';
import { appendMetrics, ensembleReport, peakRssMB, RunningMetrics, splitMetrics, type EpochMetrics } from './metrics.js';
import { saveRunState, type RunState } from './runState.js';
import { curvesSvg, epochLine, pct } from './report.js';
import { Progress } from './progress.js';
import type { BatchResult, BlockExecutor } from './executor.js';
import type { RunConfig, FinetuneEvent } from './options.js';
import type { Trainer } from './stages.js';

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
  log: (s: string) => void;
}

/** Trains from `run.startEpoch` to the last epoch or an early stop; returns whether it stopped early. */
export async function runEpochs(ctx: LoopContext): Promise<boolean> {
  const { cfg, trainers, run } = ctx;
  const progress = new Progress();
  for (let epoch = run.startEpoch; epoch < cfg.epochs; epoch++) {
    const t0 = performance.now();
    progress.begin();
    await ctx.executor.takeSeconds();
    const running = await trainEpoch(ctx, epoch, progress);
    const trainSeconds = (performance.now() - t0) / 1000;
    const blockSeconds = await ctx.executor.takeSeconds();
    const m = await validate(ctx, epoch, running, trainSeconds, blockSeconds, t0);
    progress.end();
    run.history.push(m);
    const halt = run.stop.observe(m.ensemble.acc, epoch);
    if (run.stop.state.bestEpoch === epoch) run.best = { epoch, states: await ctx.executor.weights() };
    appendMetrics(join(cfg.out, 'metrics.jsonl'), m);
    saveRunState(cfg, trainers, await ctx.executor.snapshot(), epoch, run);
    writeFileAtomic(join(cfg.out, 'curves.svg'), curvesSvg(run.history, trainers));
    ctx.emit({ type: 'epoch', metrics: m });
    ctx.log(epochLine(m, cfg.epochs));
    if (halt) {
      ctx.log(`early stop: validation accuracy has not improved for ${cfg.stopPatience} epochs (best ${pct(run.stop.state.best)} at epoch ${run.stop.state.bestEpoch + 1})`);
      return true;
    }
  }
  return false;
}

async function trainEpoch(ctx: LoopContext, epoch: number, progress: Progress): Promise<RunningMetrics> {
  const { cfg, trainers, data, steps } = ctx;
  const J = cfg.classes.length;
  const running = new RunningMetrics(trainers.length, J, cfg.batchSize);
  const dims = [data.train.channels, data.train.height, data.train.width];
  const { mean, std } = data.preprocess;
  let step = 0;
  // Minibatches handed to the executor and not yet read back: one when serial, one per stage and one more when pipelined.
  const inFlight: { done: Promise<BatchResult>; labels: number[] }[] = [];
  const readBack = async () => {
    const { done, labels } = inFlight.shift()!;
    const results = await done;
    trainers.forEach((t, k) => {
      const loss = results.losses[k]!;
      if (!Number.isFinite(loss))
        throw new NonFiniteLossError(
          `block ${t.block.index} (${t.block.name}) produced a non-finite loss (${loss}) at epoch ${epoch + 1}, step ${step + 1}. ` +
            `The last good checkpoint (${ctx.run.history.length ? `epoch ${ctx.run.history.length}` : 'none yet'}) is kept in ${cfg.out}. Try a lower --lr (now ${t.plateau.state.lr}).`,
        );
      running.addBlock(k, loss, results.goodness[k]!, labels, t.role === 'layer');
    });
    running.endBatch(labels);
    step++;
    ctx.emit({ type: 'step', epoch, step, steps, losses: results.losses });
    progress.update(`epoch ${epoch + 1}/${cfg.epochs}`, step, steps, step * cfg.batchSize, `loss ${results.losses.at(-1)!.toFixed(3)}`);
  };
  let submitted = 0;
  for await (const batch of batches(data.train, { batchSize: cfg.batchSize, shuffle: true, seed: cfg.seed, epoch, augment: cfg.augment, dropLast: true, mean, std })) {
    if (submitted >= steps) break;
    while (inFlight.length >= ctx.executor.depth) await readBack();
    const labels = Array.from(batch.y.subarray(0, batch.n), Number);
    inFlight.push({ done: ctx.executor.train(batch.x, dims, batch.n, epoch * steps + submitted + 1, batch.y), labels });
    submitted++;
  }
  while (inFlight.length) await readBack();
  return running;
}

/** Validation of one epoch, the learning-rate schedule's step, and the epoch's metrics. */
async function validate(ctx: LoopContext, epoch: number, running: RunningMetrics, trainSeconds: number, blockSeconds: number[], t0: number): Promise<EpochMetrics> {
  const { cfg, trainers, data, steps } = ctx;
  const J = cfg.classes.length;
  const layerIdx = trainers.flatMap((t, k) => (t.role === 'layer' ? [k] : []));
  const probeIdx = trainers.findIndex((t) => t.role === 'probe');
  const val = await ctx.executor.evaluate(data.val, { batchSize: cfg.batchSize, classes: J, mean: data.preprocess.mean, std: data.preprocess.std });
  const valMetrics = splitMetrics(val, J);
  const ens = ensembleReport({ labels: val.labels, goodness: layerIdx.map((k) => val.goodness[k]!) }, J, cfg.ensemble);
  valMetrics.layers = ens.layers;
  if (probeIdx >= 0) valMetrics.layers.head = valMetrics.acc[probeIdx]!;
  const weights = trainers.map((t, k) => (t.role === 'layer' ? ens.weights[layerIdx.indexOf(k)]! : 0));
  const lrs = trainers.map((t, k) => t.plateau.observe(valMetrics.loss[k]!));
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
  };
}

/** Trainable parameters of a run, aux heads included (a frozen block's layout holds only its head). */
export function trainableParams(trainers: Trainer[]): number {
  return trainers.reduce((a, t) => a + t.layout.total, 0);
}
