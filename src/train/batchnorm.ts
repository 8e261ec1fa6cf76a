/**
 * BatchNorm running statistics start at mean 0 / variance 1 and move towards the batch
 * statistics by PyTorch's momentum p per step, so after T steps the initial values still weigh
 * (1 − p)^T. torchvision's MobileNetV3 uses p = 0.01: after 120 steps 30% of the initial
 * variance remains, deep layers' evaluation-mode activations shrink layer after layer and the
 * validation accuracy sits at chance while training accuracy climbs. Warn before that happens.
 */
import { attrFloat } from '../ir/attrs.js';
import type { TrainBlock } from '../blocks/block.js';

/** The weight the initial running statistics keep after training, above which a run is warned. */
const LEFTOVER_LIMIT = 0.05;

export interface RunningStatsCheck {
  blocks: readonly TrainBlock[];
  /** Random initial weights: their running statistics carry no information yet. */
  fromScratch: boolean;
  /** --bn-momentum (PyTorch's convention), replacing every node's own. */
  bnMomentum?: number;
  /** Optimizer steps the run will take. */
  totalSteps: number;
}

/** A warning naming the slowest BN momentum and what to do, or undefined when statistics will converge. */
export function runningStatsWarning(c: RunningStatsCheck): string | undefined {
  if (!c.fromScratch || c.totalSteps <= 0) return undefined;
  const momenta = c.blocks.flatMap((b) => b.nodes.filter((n) => n.opType === 'BatchNormalization').map((n) => c.bnMomentum ?? 1 - attrFloat(n, 'momentum', 0.9)));
  if (!momenta.length) return undefined;
  const slowest = Math.min(...momenta);
  const leftover = (1 - slowest) ** c.totalSteps;
  if (leftover <= LEFTOVER_LIMIT) return undefined;
  const enough = Math.ceil(Math.log(LEFTOVER_LIMIT) / Math.log(1 - slowest));
  const suggest = Math.min(1, Math.max(0.1, 1 - LEFTOVER_LIMIT ** (1 / c.totalSteps)));
  return (
    `BatchNorm running statistics: momentum ${Number(slowest.toPrecision(3))} over ${c.totalSteps} steps leaves ${(leftover * 100).toFixed(0)}% of their initial values, ` +
    `so evaluation-mode accuracy will lag far behind training accuracy; pass --bn-momentum ${Number(suggest.toPrecision(2))} or train for at least ${enough} steps`
  );
}
