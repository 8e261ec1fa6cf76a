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
import { classifierObjective, cwcObjective, linearProbe, sffObjective, type Objective } from '../sff/objective.js';
import { ADAMW_DEFAULTS } from '../optim/adamw.js';
import { mixSeed } from '../util/rng.js';
import { createSession, type RuntimeOptions } from '../runtime/session.js';
import type { TrainBlock } from '../blocks/block.js';
import type { ParamLayout } from '../blocks/params.js';
import { blockLayout, buildEvalGraph, buildTrainStep, headPrefix, initialParams } from './artifacts.js';
import { BlockRunner } from './runner.js';
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
          : sffObjective({ channels: block.outputShape[0]!, classes: J, kernel: cfg.auxKernel, norm: cfg.norm, seed }, headPrefix(block));
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
}

/** One stage's runner: parameters packed from the block and its head, train (and eval) sessions built. */
export async function buildBlockRunner({ block, objective }: Stage, spec: BlockRunnerSpec): Promise<BlockRunner> {
  const hp = objective.params;
  const layout: ParamLayout = blockLayout(block, hp);
  const floats = (name: string) => new Float32Array(block.constants.get(name)!.raw.slice().buffer);
  const init = initialParams(block, hp, layout);
  const adamw = { ...ADAMW_DEFAULTS, ...(spec.weightDecay !== undefined ? { weightDecay: spec.weightDecay } : {}) };
  const train = encodeModel(await buildTrainStep({ block, objective, classes: spec.classes, batchSize: spec.batchSize, adamw, labelSmoothing: spec.labelSmoothing ?? 0, ...(spec.bnMomentum !== undefined ? { bnMomentum: spec.bnMomentum } : {}) }, layout));
  const evalGraph = spec.withEval ? encodeModel(buildEvalGraph(block, objective, layout, spec.classes)) : undefined;
  if (spec.graphsDir) {
    mkdirSync(spec.graphsDir, { recursive: true });
    // Block names come from the model (module scopes): sanitised, and the result checked to stay in the folder.
    const stem = `block${block.index}_${safeFileName(block.name)}`;
    writeFileAtomic(pathInside(spec.graphsDir, [`${stem}.train.onnx`], `block ${block.index}'s graph file`), train);
    if (evalGraph) writeFileAtomic(pathInside(spec.graphsDir, [`${stem}.eval.onnx`], `block ${block.index}'s graph file`), evalGraph);
  }
  const rt = (kind: string): RuntimeOptions => ({ ...spec.runtime, ...(spec.runtime.profilePrefix ? { profilePrefix: `${spec.runtime.profilePrefix}${kind}_${block.index}` } : {}) });
  const sessions = { train: await createSession(train, rt('train')), ...(evalGraph ? { eval: await createSession(evalGraph, rt('eval')) } : {}) };
  const stateDims = new Map(block.state.map((s) => [s, block.constants.get(s)!.dims]));
  const state = new Map(block.state.map((s) => [s, { data: floats(s), dims: block.constants.get(s)!.dims }]));
  return new BlockRunner(block.name, layout, { params: init, state }, sessions, stateDims, spec.lr);
}

/** A stage being trained: its runner, its learning-rate schedule and its share of the step time. */
export interface Trainer extends Stage {
  runner: BlockRunner;
  plateau: Plateau;
  headParamCount: number;
  seconds: number;
}

export async function buildTrainers(
  pm: PreparedModel,
  cfg: RunConfig,
  runtime: RuntimeOptions,
  emit: (e: FinetuneEvent) => void,
  progress: RunProgress,
  signal?: AbortSignal,
  headInit?: MatchedClassifier,
): Promise<Trainer[]> {
  const trainers: Trainer[] = [];
  const stages = planStages(pm, cfg, headInit);
  const phase = progress.phase('build', stages.length, 'blocks');
  phase.update(0);
  for (const stage of stages) {
    signal?.throwIfAborted();
    const { block, objective, role } = stage;
    const t0 = performance.now();
    const runner = await buildBlockRunner(stage, {
      classes: cfg.classes.length,
      batchSize: cfg.batchSize,
      lr: cfg.lr,
      weightDecay: cfg.weightDecay,
      labelSmoothing: cfg.labelSmoothing ?? 0,
      ...(cfg.bnMomentum !== undefined ? { bnMomentum: cfg.bnMomentum } : {}),
      withEval: true,
      runtime,
      graphsDir: join(cfg.out, 'blocks'),
    });
    const headParamCount = objective.params.reduce((a, p) => a + p.init.length, 0);
    emit({
      type: 'block',
      index: block.index,
      name: block.name,
      outputShape: block.outputShape,
      params: runner.layout.total - headParamCount,
      headParams: headParamCount,
      frozen: isFrozen(cfg, block),
      probe: role === 'probe',
      buildSeconds: (performance.now() - t0) / 1000,
    });
    trainers.push({ ...stage, runner, plateau: Plateau.start(cfg.lr, cfg.lrPatience), headParamCount, seconds: 0 });
    phase.update(trainers.length);
  }
  phase.end();
  return trainers;
}
