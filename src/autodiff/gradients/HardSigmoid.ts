import { attrFloat } from '../../ir/attrs.js';
import { scalar } from '../helpers.js';
import type { GradRule } from '../types.js';

/** y = max(0, min(1, alpha*x + beta)): dx = alpha*dy where 0 < alpha*x + beta < 1. */
export const HardSigmoid: GradRule = (ctx) => {
  const dy = ctx.gradOutput(0);
  if (!dy || !ctx.needsGrad(0)) return [undefined];
  const { b, node } = ctx;
  const alpha = attrFloat(node, 'alpha', 0.2);
  const beta = attrFloat(node, 'beta', 0.5);
  const t = b.op('Add', [b.op('Mul', [node.inputs[0]!, scalar(b, alpha)]), scalar(b, beta)]);
  const inside = b.op('And', [b.op('Greater', [t, scalar(b, 0)]), b.op('Less', [t, scalar(b, 1)])]);
  return [b.op('Where', [inside, b.op('Mul', [dy, scalar(b, alpha)]), scalar(b, 0)])];
};
