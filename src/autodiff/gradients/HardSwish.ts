import { scalar } from '../helpers.js';
import type { GradRule } from '../types.js';

/** y = x * clip(x/6 + 1/2, 0, 1): dy/dx = 0 below -3, 1 above 3, x/3 + 1/2 between. */
export const HardSwish: GradRule = (ctx) => {
  const dy = ctx.gradOutput(0);
  if (!dy || !ctx.needsGrad(0)) return [undefined];
  const { b, node } = ctx;
  const x = node.inputs[0]!;
  const slope = b.op('Add', [b.op('Mul', [x, scalar(b, 1 / 3)]), scalar(b, 0.5)]);
  const mid = b.op('Mul', [dy, slope]);
  const upper = b.op('Where', [b.op('Greater', [x, scalar(b, 3)]), dy, mid]);
  return [b.op('Where', [b.op('Less', [x, scalar(b, -3)]), scalar(b, 0), upper])];
};
