/**
 * `--pipeline auto|off|N`: turns the run's blocks into a BlockExecutor. Pipelined, a few timed
 * training steps (whose effect on the weights is undone) measure each block's cost, and the
 * stages are then balanced on those costs.
 */
import { availableParallelism } from 'node:os';
import { batches, type ImageSet } from '../../data/index.js';
import type { BatchResult, BlockExecutor, EvalOptions } from '../blockExecutor.js';
import type { SplitGoodness } from '../evaluate.js';
import { OptionError } from '../optionError.js';
import { concurrentSessionsBlocker } from '../../runtime/providers.js';
import type { BlockState, BlockWeights } from '../runner.js';
import { BlockPipeline, type PipelineOptions } from './coordinator.js';
import type { WorkerBlock } from './messages.js';
import { amdahlCost, balanceStages, DEFAULT_PARALLEL_FRACTION, evenStages, formatPlan, type StagePlan } from './plan.js';

export type PipelineSetting = 'off' | 'auto' | number;

export function parsePipeline(value: string | number | undefined): PipelineSetting {
  if (value === undefined || value === 'off') return 'off';
  if (value === 'auto') return 'auto';
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new OptionError(`--pipeline must be auto, off or a number of workers ≥ 1, got '${value}'`);
  return n;
}

/**
 * How many workers `--pipeline` asks for on a run of `blocks` blocks and `threads` threads in all
 * (default: every core), or undefined to run serially: off, or auto where one worker is all there
 * is room for (one core or one block).
 */
export function pipelineWorkers(setting: PipelineSetting, blocks: number, threads?: number): number | undefined {
  if (setting === 'off') return undefined;
  if (setting === 'auto') {
    const workers = Math.min(threads ?? availableParallelism(), blocks);
    return workers >= 2 ? workers : undefined;
  }
  if (setting > blocks) throw new OptionError(`--pipeline ${setting}: this run has ${blocks} block${blocks === 1 ? '' : 's'}, so at most ${blocks} pipeline worker${blocks === 1 ? '' : 's'}`);
  return setting;
}

/**
 * Pipeline workers run sessions concurrently, which not every device allows: there `--pipeline N`
 * is refused (checked before the device starts) and `auto` runs serially, for the reason returned.
 */
export function pipelineDeviceBlocker(setting: PipelineSetting, device: string | undefined): string | undefined {
  const blocker = setting === 'off' ? undefined : concurrentSessionsBlocker(device);
  if (blocker && setting !== 'auto') throw new OptionError(`--pipeline ${setting} on --device ${device}: ${blocker}; drop --pipeline (the blocks then run one after another on the GPU)`);
  return blocker;
}

export class PipelinedExecutor implements BlockExecutor {
  constructor(
    readonly pipeline: BlockPipeline,
    /** What the plan was balanced on: each block's measured ms per step, at `measuredThreads[b]` threads. */
    readonly calibration?: { blockMs: number[]; measuredThreads: number[] },
  ) {}

  get depth(): number {
    return this.pipeline.depth;
  }

  train(x: Float32Array, dims: number[], n: number, step: number, labels: BigInt64Array): Promise<BatchResult> {
    return this.pipeline.submit('train', x, dims, n, step, labels);
  }

  async evaluate(set: ImageSet, opts: EvalOptions): Promise<SplitGoodness> {
    const n = set.count;
    const J = opts.classes;
    const K = this.pipeline.names.length;
    const goodness = Array.from({ length: K }, () => new Float32Array(n * J));
    const labels = new Int32Array(n);
    const dims = [set.channels, set.height, set.width];
    const inFlight: { done: Promise<BatchResult>; offset: number; n: number }[] = [];
    let finished = 0;
    const drain = async () => {
      const { done, offset, n: count } = inFlight.shift()!;
      const r = await done;
      r.goodness.forEach((g, k) => goodness[k]!.set(g, offset * J));
      finished += count;
      opts.onBatch?.(finished, n);
    };
    let offset = 0;
    for await (const batch of batches(set, { batchSize: opts.batchSize, shuffle: false, seed: 0, epoch: 0, mean: opts.mean, std: opts.std })) {
      while (inFlight.length >= this.depth) await drain();
      inFlight.push({ done: this.pipeline.submit('eval', batch.x, dims, batch.n, 0), offset, n: batch.n });
      for (let i = 0; i < batch.n; i++) labels[offset + i] = Number(batch.y[i]);
      offset += batch.n;
    }
    while (inFlight.length) await drain();
    return { labels, goodness };
  }

  snapshot(): Promise<BlockState[]> {
    return this.pipeline.snapshot();
  }
  weights(): Promise<BlockWeights[]> {
    return this.pipeline.weights();
  }
  setWeights(weights: BlockWeights[]): Promise<void> {
    return this.pipeline.setWeights(weights);
  }
  restore(states: BlockState[]): Promise<void> {
    return this.pipeline.restore(states);
  }
  setLr(lrs: number[]): Promise<void> {
    return this.pipeline.setLr(lrs);
  }
  takeSeconds(): Promise<number[]> {
    return this.pipeline.takeSeconds();
  }
  close(): Promise<void> {
    return this.pipeline.close();
  }
}

/** A batch to time the blocks on (any training batch of the run's size). */
export interface CalibrationBatch {
  x: Float32Array;
  dims: number[];
  n: number;
  labels: BigInt64Array;
}

export interface PipelineRequest extends PipelineOptions {
  setting: 'auto' | number;
  /** Total onnxruntime threads over all workers (default: every core). */
  threads?: number;
  calibration: CalibrationBatch;
  log: (line: string) => void;
}

/** Timed steps after one warm-up step. */
const CALIBRATION_STEPS = 2;

/**
 * Milliseconds per training step of each block, measured in `pipeline` one batch at a time (no
 * overlap, so stages do not compete for cores); the weights, optimiser state and step counters
 * are restored afterwards, so the run continues exactly as if nothing had been measured.
 */
export async function measureBlockCosts(pipeline: BlockPipeline, batch: CalibrationBatch): Promise<number[]> {
  const before = await pipeline.snapshot();
  await pipeline.submit('train', batch.x, batch.dims, batch.n, 0, batch.labels);
  await pipeline.takeSeconds();
  for (let i = 0; i < CALIBRATION_STEPS; i++) await pipeline.submit('train', batch.x, batch.dims, batch.n, 0, batch.labels);
  const seconds = await pipeline.takeSeconds();
  await pipeline.restore(before);
  return seconds.map((s) => (s * 1000) / CALIBRATION_STEPS);
}

function samePlan(a: StagePlan[], b: StagePlan[]): boolean {
  return a.length === b.length && a.every((s, i) => s.first === b[i]!.first && s.last === b[i]!.last && s.threads === b[i]!.threads);
}

/** Starts the pipeline for `--pipeline auto|N` (see `pipelineWorkers` for when auto means serial). */
export async function startPipeline(blocks: WorkerBlock[], req: PipelineRequest): Promise<PipelinedExecutor> {
  const K = blocks.length;
  const names = blocks.map((b) => b.name);
  const cores = req.threads ?? availableParallelism();
  const maxWorkers = pipelineWorkers(req.setting, K, req.threads);
  if (maxWorkers === undefined) throw new OptionError(`--pipeline ${req.setting}: one worker is all this run has room for (${K} blocks, ${cores} threads); use --pipeline off`);
  const threads = Math.max(cores, maxWorkers);
  const opts: PipelineOptions = { ...(req.device ? { device: req.device } : {}), ...(req.memArena !== undefined ? { memArena: req.memArena } : {}), ...(req.fault ? { fault: req.fault } : {}) };
  const provisional = evenStages(K, maxWorkers, threads);
  let pipeline = await BlockPipeline.start(blocks, provisional, opts);
  let ms: number[];
  try {
    ms = await measureBlockCosts(pipeline, req.calibration);
  } catch (e) {
    await pipeline.close();
    throw e;
  }
  const measuredThreads = provisional.flatMap((s) => Array.from({ length: s.last - s.first + 1 }, () => s.threads));
  const perBlock = (b: number, t: number) => amdahlCost([ms[b]!], measuredThreads[b]!, DEFAULT_PARALLEL_FRACTION)(0, t);
  // auto: the worker count whose slowest stage is shortest (fewer workers on a tie); N: exactly N.
  const candidates = req.setting === 'auto' ? Array.from({ length: maxWorkers - 1 }, (_, i) => i + 2) : [maxWorkers];
  let plan = balanceStages(K, candidates[0]!, threads, perBlock);
  for (const w of candidates.slice(1)) {
    const p = balanceStages(K, w, threads, perBlock);
    if (Math.max(...p.map((s) => s.ms!)) < Math.max(...plan.map((s) => s.ms!)) * 0.98) plan = p;
  }
  req.log(`pipeline ${plan.length} workers, ${threads} threads (block costs measured over ${CALIBRATION_STEPS} steps: ${ms.map((m) => m.toFixed(1)).join(', ')} ms):`);
  for (const line of formatPlan(plan, names)) req.log(line);
  if (!samePlan(plan, provisional)) {
    await pipeline.close();
    pipeline = await BlockPipeline.start(blocks, plan, opts);
  }
  return new PipelinedExecutor(pipeline, { blockMs: ms, measuredThreads });
}
