import { scalar } from '../helpers.js';
import type { GradRule } from '../types.js';

/** y = max(x, 0): dx = dy where x > 0, else 0. */
export const Relu: GradRule = (ctx) => {
  const dy = ctx.gradOutput(0);
  if (!dy || !ctx.needsGrad(0)) return [undefined];
  const { b } = ctx;
  const pos = b.op('Greater', [ctx.node.inputs[0]!, scalar(b, 0)]);
  return [b.op('Where', [pos, dy, scalar(b, 0)])];
};
