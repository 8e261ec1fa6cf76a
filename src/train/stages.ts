/**
 * What a run trains, block by block, and the runner that trains each: the stages of a method,
 * and `buildBlockRunner`, which turns one stage into its train-step and eval sessions (the
 * trainer and the throughput bench both build runners here).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { encodeModel } from '../onnx/io.js';
import { writeFileAtomic } from '../util/fs.js';
import { pathInside, safeFileName } from '../util/paths.js';
import { numElements } from '../ir/tensor.js';
import { resolveHeadPool } from '../sff/head.js';
import { classifierObjective, cwcObjective, linearProbe, sffObjective, type Objective } from '../sff/objective.js';
import { ADAMW_DEFAULTS } from '../optim/adamw.js';
import { mixSeed } from '../util/rng.js';
import type { RuntimeOptions } from '../runtime/session.js';
import { graphTarget, placementLines, type PlacementSummary } from '../runtime/providers.js';
import type { TrainBlock } from '../blocks/block.js';
import type { ParamLayout } from '../blocks/params.js';
import type { GradFormulations } from '../autodiff/index.js';
import { blockLayout, buildEvalGraph, buildTrainStep, headPrefix, initialParams } from './artifacts.js';
import type { BlockRunner } from './runner.js';
import { runnerFor, toWorkerBlock } from './pipeline/blocks.js';
import type { BlockPlacementReport, WorkerBlock } from './pipeline/messages.js';
import { bpBlock, type PreparedModel } from './model.js';
import type { RunConfig } from './options.js';
import { Plateau } from './schedule.js';
import { pooledLinearObjective } from '../sff/pooledLinear.js';
import type { MatchedClassifier } from './classifierInit.js';
import type { FinetuneEvent } from './events.js';
import type { RunProgress } from './progress.js';

export interface Stage {
  block: TrainBlock;
  objective: Objective;
  /** 'layer' blocks form the "layers" ensemble; a 'probe' (CwC-mod's linear head) is reported apart. */
  role: 'layer' | 'probe';
}

export function isFrozen(cfg: RunConfig, block: TrainBlock): boolean {
  return cfg.freeze.some((f) => f === block.name || f === String(block.index));
}

/**
 * What is trained, block by block, for each method: SFF (every block with its own aux head and
 * local loss), BP (the whole network as one block with its classifier) and CwC-mod (channel-wise
 * competitive blocks plus a linear probe on the detached last block).
 */
export function planStages(pm: PreparedModel, cfg: RunConfig, headInit?: MatchedClassifier): Stage[] {
  const J = cfg.classes.length;
  if (cfg.method === 'bp') return [{ block: bpBlock(pm, J, cfg.seed), objective: classifierObjective(), role: 'layer' }];
  // SFF: the last `pooledHeads` body blocks score with a pooled linear map, and the network's own
  // head (with --head-block) runs as a final block whose linear map replaces its classifier.
  const pooledFrom = pm.blocks.length - (cfg.pooledHeads ?? 0);
  const body = cfg.method === 'sff' && cfg.headBlock && pm.headBlock ? [...pm.blocks, pm.headBlock] : pm.blocks;
  const stages: Stage[] = body.map((original) => {
    // A frozen block keeps its weights; only its head learns (no gradient crosses the block).
    const block: TrainBlock = isFrozen(cfg, original) ? { ...original, trainable: [] } : original;
    const seed = mixSeed(cfg.seed, block.index, 0x5ff);
    const objective =
      cfg.method === 'cwc'
        ? cwcObjective(block.outputShape[0]!, J)
        : original === pm.headBlock || block.index >= pooledFrom
          ? pooledLinearObjective({ outputShape: block.outputShape, classes: J, seed, ...(original === pm.headBlock && headInit ? { init: headInit } : {}) }, headPrefix(block))
          : sffObjective({ channels: block.outputShape[0]!, classes: J, kernel: cfg.auxKernel, norm: cfg.norm, seed, pool: resolveHeadPool(cfg.headPool ?? 'off', block.outputShape.slice(1)) }, headPrefix(block));
    return { block, objective, role: 'layer' as const };
  });
  if (cfg.method === 'cwc') {
    const last = stages.at(-1)!.block;
    const probe: TrainBlock = { ...last, index: last.index + 1, name: 'head', input: last.output, nodes: [], constants: new Map(), trainable: [], state: [], inputShape: last.outputShape };
    stages.push({ block: probe, objective: linearProbe(numElements(last.outputShape), J, mixSeed(cfg.seed, 0x11ea4), 'cwc.head'), role: 'probe' });
  }
  return stages;
}

export interface BlockRunnerSpec {
  classes: number;
  batchSize: number;
  lr: number;
  weightDecay?: number;
  bnMomentum?: number;
  /** Label smoothing ε of the block's loss (default 0). */
  labelSmoothing?: number;
  /** Build the eval session too (validation, export check). */
  withEval: boolean;
  runtime: RuntimeOptions;
  /** Also write the train and eval graphs into this folder. */
  graphsDir?: string;
  /** Gradient formulations where a rule has several (default: the project's; the bench compares others). */
  formulations?: Partial<GradFormulations>;
  /** On a GPU device: where each session's nodes ran (see createPlacedSession). */
  onPlacement?: (placement: { train?: PlacementSummary; eval?: PlacementSummary }) => void;
}

/** A stage's parameter layout with its initial values (block weights, fresh head) and BN running statistics. */
export function initialWeights({ block, objective }: Pick<Stage, 'block' | 'objective'>): { layout: ParamLayout; params: Float32Array; state: Map<string, Float32Array> } {
  const hp = objective.params;
  const layout: ParamLayout = blockLayout(block, hp);
  const floats = (name: string) => new Float32Array(block.constants.get(name)!.raw.slice().buffer);
  return { layout, params: initialParams(block, hp, layout), state: new Map(block.state.map((s) => [s, floats(s)])) };
}

/**
 * One stage's graphs and initial weights (parameters packed from the block and its head), as a
 * worker thread or this thread turns them into a runner; `index` is its place in the run.
 */
export async function buildBlockGraphs(
  index: number,
  { block, objective }: Stage,
  spec: Omit<BlockRunnerSpec, 'runtime' | 'onPlacement'> & { device?: string | undefined },
): Promise<{ graphs: WorkerBlock; layout: ParamLayout }> {
  const { layout, params: init } = initialWeights({ block, objective });
  const adamw = { ...ADAMW_DEFAULTS, ...(spec.weightDecay !== undefined ? { weightDecay: spec.weightDecay } : {}) };
  // Built for the device's execution provider: ops it lacks are rewritten (autodiff/lowering.ts).
  const target = graphTarget(spec.device);
  const trainModel = await buildTrainStep(
    { block, objective, classes: spec.classes, batchSize: spec.batchSize, adamw, target, labelSmoothing: spec.labelSmoothing ?? 0, ...(spec.bnMomentum !== undefined ? { bnMomentum: spec.bnMomentum } : {}), ...(spec.formulations ? { formulations: spec.formulations } : {}) },
    layout,
  );
  const evalModel = spec.withEval ? buildEvalGraph(block, objective, layout, spec.classes, target) : undefined;
  const train = encodeModel(trainModel);
  const evalGraph = evalModel ? encodeModel(evalModel) : undefined;
  if (spec.graphsDir) {
    mkdirSync(spec.graphsDir, { recursive: true });
    // Block names come from the model (module scopes): sanitised, and the result checked to stay in the folder.
    const stem = `block${block.index}_${safeFileName(block.name)}`;
    writeFileAtomic(pathInside(spec.graphsDir, [`${stem}.train.onnx`], `block ${block.index}'s graph file`), train);
    if (evalGraph) writeFileAtomic(pathInside(spec.graphsDir, [`${stem}.eval.onnx`], `block ${block.index}'s graph file`), evalGraph);
  }
  return { graphs: toWorkerBlock(index, block, layout, init, { train, ...(evalGraph ? { eval: evalGraph } : {}) }, spec.lr), layout };
}

/** One stage's runner on this thread: its graphs built, train (and eval) sessions created. */
export async function buildBlockRunner(stage: Stage, spec: BlockRunnerSpec, index = stage.block.index): Promise<BlockRunner> {
  const { runtime, onPlacement, ...graphSpec } = spec;
  return runnerFor((await buildBlockGraphs(index, stage, { ...graphSpec, device: runtime.device })).graphs, runtime, onPlacement);
}

/** A stage being trained: its parameter layout and its learning-rate schedule (the runner lives in a BlockExecutor). */
export interface Trainer extends Stage {
  layout: ParamLayout;
  plateau: Plateau;
  headParamCount: number;
}

/**
 * Every stage's graphs, and either their runners on this thread (`sessions`: a serial run) or the
 * blocks as pipeline workers receive them (`graphs`).
 */
export async function buildTrainers(
  pm: PreparedModel,
  cfg: RunConfig,
  runtime: RuntimeOptions,
  emit: (e: FinetuneEvent) => void,
  progress: RunProgress,
  sessions: boolean,
  signal?: AbortSignal,
  headInit?: MatchedClassifier,
): Promise<{ trainers: Trainer[]; runners: BlockRunner[]; graphs: WorkerBlock[] }> {
  const trainers: Trainer[] = [];
  const runners: BlockRunner[] = [];
  const graphs: WorkerBlock[] = [];
  const stages = planStages(pm, cfg, headInit);
  const phase = progress.phase('build', stages.length, 'blocks');
  phase.update(0);
  let fellBack = false;
  for (const stage of stages) {
    signal?.throwIfAborted();
    const { block, objective, role } = stage;
    const t0 = performance.now();
    let placement: BlockPlacementReport | undefined;
    const built = await buildBlockGraphs(trainers.length, stage, {
      classes: cfg.classes.length,
      batchSize: cfg.batchSize,
      lr: cfg.lr,
      weightDecay: cfg.weightDecay,
      labelSmoothing: cfg.labelSmoothing ?? 0,
      ...(cfg.bnMomentum !== undefined ? { bnMomentum: cfg.bnMomentum } : {}),
      withEval: true,
      graphsDir: join(cfg.out, 'blocks'),
      device: runtime.device,
    });
    // Pipeline workers make their own sessions and report placement when ready (train/executor.ts).
    if (sessions) runners.push(await runnerFor(built.graphs, runtime, (p) => (placement = { index: block.index, name: block.name, ...p })));
    else graphs.push(built.graphs);
    const layout = built.layout;
    const headParamCount = objective.params.reduce((a, p) => a + p.init.length, 0);
    emit({
      type: 'block',
      index: block.index,
      name: block.name,
      outputShape: block.outputShape,
      params: layout.total - headParamCount,
      headParams: headParamCount,
      frozen: isFrozen(cfg, block),
      probe: role === 'probe',
      buildSeconds: (performance.now() - t0) / 1000,
    });
    if (placement) fellBack = notePlacement(placement, emit) || fellBack;
    trainers.push({ ...stage, layout, plateau: Plateau.start(cfg.lr, cfg.lrPatience), headParamCount });
    phase.update(trainers.length);
  }
  phase.end();
  if (fellBack) warnFallback(runtime.device, emit);
  return { trainers, runners, graphs };
}

/** On a GPU device, where each node of a block's graphs runs; true when some fall back to the CPU. */
export function notePlacement(p: BlockPlacementReport, emit: (e: FinetuneEvent) => void): boolean {
  const lines = placementLines(p.index, p.name, p.train, p.eval);
  for (const message of lines) emit({ type: 'note', message });
  return [p.train, p.eval].some((s) => s !== undefined && s.fallback.length > 0);
}

/** A run that falls back says so once, after the per-block lines. */
export function warnFallback(device: string | undefined, emit: (e: FinetuneEvent) => void): void {
  emit({ type: 'warning', message: `this run falls back to onnxruntime's CPU EP for some nodes on --device ${device} (listed per block above): it runs, slower, with tensors copied each step` });
}
