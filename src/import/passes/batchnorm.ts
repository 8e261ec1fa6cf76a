/**
 * After constant folding every BatchNormalization must read stored parameters: scale, bias and
 * running statistics as initializers (exporters may have computed them from aliases or constant
 * sub-graphs, which folding has turned into initializers by now).
 */
import type { Graph } from '../../ir/graph.js';
import { ImportError } from '../errors.js';
import { scopeOf } from './where.js';

const ROLES = ['input', 'scale', 'bias', 'running mean', 'running variance'];

export function checkBatchNormParams(g: Graph): void {
  for (const n of g.nodes) {
    if (n.opType !== 'BatchNormalization') continue;
    for (const s of [1, 2, 3, 4]) {
      const v = n.inputs[s];
      if (v && g.initializers.has(v)) continue;
      throw new ImportError(
        `BatchNormalization '${n.name}'${scopeOf(n)}: its ${ROLES[s]} ('${v ?? ''}') is computed from the image, not stored, so it cannot be trained as a BN layer; ` +
        `re-export the model in eval mode, or move this node out of the trained blocks (--blocks) or freeze its block (--freeze)`,
      );
    }
  }
}
