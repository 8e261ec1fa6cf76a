/**
 * Who runs the blocks: the epoch loop hands batches to a BlockExecutor and reads back every
 * block's loss and goodness, without knowing whether the blocks run one after another on this
 * thread (SerialExecutor) or as a pipeline across worker threads (train/pipeline/).
 */
import { batches, type ImageSet, type PreparedData } from '../data/index.js';
import type { RuntimeOptions } from '../runtime/session.js';
import { imagesTensor, labelsTensor, type Tensor } from '../runtime/tensors.js';
import { collectGoodness, type SplitGoodness } from './evaluate.js';
import { numElements } from '../ir/tensor.js';
import type { BlockRunner, BlockState, BlockWeights } from './runner.js';
import type { PreparedModel } from './model.js';
import type { FinetuneOptions, RunConfig } from './options.js';
import type { FinetuneEvent } from './events.js';
import type { RunProgress } from './progress.js';
import { buildTrainers, notePlacement, planStages, warnFallback, type Trainer } from './stages.js';
import type { MatchedClassifier } from './classifierInit.js';
import { pipelineDeviceBlocker, pipelineWorkers, startPipeline } from './pipeline/executor.js';
import type { BatchResult, BlockExecutor, EvalOptions } from './blockExecutor.js';

export type { BatchResult, BlockExecutor, EvalOptions } from './blockExecutor.js';

/** Every block on this thread, one after another — the reference schedule. */
export class SerialExecutor implements BlockExecutor {
  readonly depth = 1;
  private readonly seconds: number[];

  constructor(readonly runners: BlockRunner[]) {
    this.seconds = runners.map(() => 0);
  }

  async train(x: Float32Array, dims: number[], n: number, _step: number, labels: BigInt64Array): Promise<BatchResult> {
    const y = labelsTensor(labels, n);
    let input: Tensor = imagesTensor(x, n, dims);
    const result: BatchResult = { losses: [], goodness: [] };
    for (let k = 0; k < this.runners.length; k++) {
      const t0 = performance.now();
      const r = await this.runners[k]!.trainStep(input, y);
      this.seconds[k]! += (performance.now() - t0) / 1000;
      result.losses.push(r.loss);
      result.goodness.push(r.goodness);
      input = r.next;
    }
    return result;
  }

  evaluate(set: ImageSet, opts: EvalOptions): Promise<SplitGoodness> {
    return collectGoodness(this.runners, set, opts);
  }

  async snapshot(): Promise<BlockState[]> {
    return this.runners.map((r) => r.snapshot());
  }

  async weights(): Promise<BlockWeights[]> {
    return this.runners.map((r) => r.weights());
  }

  async setWeights(weights: BlockWeights[]): Promise<void> {
    this.runners.forEach((r, k) => r.setWeights(weights[k]!));
  }

  async restore(states: BlockState[]): Promise<void> {
    this.runners.forEach((r, k) => r.restore(states[k]!));
  }

  async setLr(lrs: number[]): Promise<void> {
    this.runners.forEach((r, k) => (r.lr = lrs[k]!));
  }

  async takeSeconds(): Promise<number[]> {
    const s = [...this.seconds];
    this.seconds.fill(0);
    return s;
  }

  async close(): Promise<void> {
    await Promise.all(this.runners.map((r) => r.release()));
  }
}

/**
 * The run's trainers and who runs their blocks: serial BlockRunners on this thread, or the
 * pipeline `--pipeline` asks for (calibrated on the run's first training batch).
 */
export async function startExecutor(
  pm: PreparedModel,
  cfg: RunConfig,
  opts: Pick<FinetuneOptions, 'pipeline' | 'pipelineFault'>,
  rt: RuntimeOptions,
  data: PreparedData,
  emit: (e: FinetuneEvent) => void,
  progress: RunProgress,
  signal?: AbortSignal,
  headInit?: MatchedClassifier,
): Promise<{ trainers: Trainer[]; executor: BlockExecutor }> {
  const setting = opts.pipeline ?? 'off';
  const note = (message: string) => emit({ type: 'note', message });
  const blocker = pipelineDeviceBlocker(setting, rt.device);
  const workers = blocker ? undefined : pipelineWorkers(setting, planStages(pm, cfg, headInit).length, rt.threads);
  if (workers === undefined || setting === 'off') {
    if (setting === 'auto') note(blocker ? `pipeline auto: ${blocker}, so the blocks run serially` : 'pipeline auto: room for one worker only (one core or one block), so the blocks run serially');
    const built = await buildTrainers(pm, cfg, rt, emit, progress, true, signal, headInit);
    return { trainers: built.trainers, executor: new SerialExecutor(built.runners) };
  }
  const built = await buildTrainers(pm, cfg, rt, emit, progress, false, signal, headInit);
  const dims = [data.train.channels, data.train.height, data.train.width];
  const it = batches(data.train, { batchSize: cfg.batchSize, shuffle: true, seed: cfg.seed, epoch: 0, dropLast: true, mean: data.preprocess.mean, std: data.preprocess.std })[Symbol.asyncIterator]();
  const batch = (await it.next()).value as { x: Float32Array; y: BigInt64Array; n: number };
  const calibration = { x: batch.x.slice(0, batch.n * numElements(dims)), dims, n: batch.n, labels: batch.y.slice(0, batch.n) };
  await it.return?.(undefined);
  const executor = await startPipeline(built.graphs, {
    setting,
    ...(rt.threads ? { threads: rt.threads } : {}),
    ...(rt.device ? { device: rt.device } : {}),
    ...(rt.memArena !== undefined ? { memArena: rt.memArena } : {}),
    ...(opts.pipelineFault ? { fault: opts.pipelineFault } : {}),
    calibration,
    log: note,
  });
  // On a GPU device each worker probed where its blocks' nodes run, as a serial run does.
  let fellBack = false;
  for (const p of executor.pipeline.placements) fellBack = notePlacement(p, emit) || fellBack;
  if (fellBack) warnFallback(rt.device, emit);
  return { trainers: built.trainers, executor };
}
