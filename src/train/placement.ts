/**
 * Where a model's per-block graphs run on a device: every stage's train step and eval graph,
 * built for the device's graph target by `buildBlockRunner` as a run builds them, placed by
 * onnxruntime and run once on zeros with its profiler on (see createPlacedSession).
 * For `inspect --device` and the placement tests.
 */
import type { PlacementSummary } from '../runtime/providers.js';
import type { RuntimeOptions } from '../runtime/session.js';
import { buildBlockRunner, type Stage } from './stages.js';

export interface BlockPlacement {
  index: number;
  name: string;
  train: PlacementSummary;
  eval: PlacementSummary;
}

/** Placement of each stage's two graphs at batch size `batchSize` (placement does not depend on it). */
export async function stagePlacements(
  stages: readonly Stage[],
  opts: RuntimeOptions & { device: string; batchSize: number; classes: number },
): Promise<BlockPlacement[]> {
  const out: BlockPlacement[] = [];
  for (const stage of stages) {
    let placed: { train?: PlacementSummary; eval?: PlacementSummary } = {};
    const runner = await buildBlockRunner(stage, {
      classes: opts.classes,
      batchSize: opts.batchSize,
      lr: 1e-3,
      withEval: true,
      runtime: opts,
      onPlacement: (p) => (placed = p),
    });
    await runner.release();
    if (!placed.train || !placed.eval) throw new Error(`stagePlacements: --device ${opts.device} runs on the CPU; there is no placement to check`);
    out.push({ index: stage.block.index, name: stage.block.name, train: placed.train, eval: placed.eval });
  }
  return out;
}
