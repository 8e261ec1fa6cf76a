/**
 * Where a model's per-block graphs run on a device: every block's train step and eval graph,
 * built for the device's graph target, placed by onnxruntime and run once on zeros with its
 * profiler on (see createPlacedSession). For `inspect --device` and the placement tests.
 */
import { ADAMW_DEFAULTS } from '../optim/adamw.js';
import type { Objective } from '../sff/objective.js';
import { graphTarget, type PlacementSummary } from '../runtime/providers.js';
import { blockLayout, buildEvalGraph, buildTrainStep } from './artifacts.js';
import { createPlacedSession, type RuntimeOptions } from './session.js';
import type { TrainBlock } from './block.js';

export interface BlockPlacement {
  index: number;
  name: string;
  train: PlacementSummary;
  eval: PlacementSummary;
}

/** Placement of each stage's two graphs at batch size `batchSize` (placement does not depend on it). */
export async function stagePlacements(
  stages: readonly { block: TrainBlock; objective: Objective }[],
  opts: RuntimeOptions & { device: string; batchSize: number; classes: number },
): Promise<BlockPlacement[]> {
  const target = graphTarget(opts.device);
  const out: BlockPlacement[] = [];
  for (const { block, objective } of stages) {
    const layout = blockLayout(block, objective.params);
    const train = await buildTrainStep({ block, objective, classes: opts.classes, batchSize: opts.batchSize, adamw: { ...ADAMW_DEFAULTS }, target }, layout);
    const evalGraph = buildEvalGraph(block, objective, layout, opts.classes, target);
    const placed: PlacementSummary[] = [];
    for (const model of [train, evalGraph]) {
      const { session, placement } = await createPlacedSession(model, opts);
      await session.release();
      if (!placement) throw new Error(`stagePlacements: --device ${opts.device} runs on the CPU; there is no placement to check`);
      placed.push(placement);
    }
    out.push({ index: block.index, name: block.name, train: placed[0]!, eval: placed[1]! });
  }
  return out;
}
