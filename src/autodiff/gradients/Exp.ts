import type { GradRule } from '../types.js';

/** y = exp(x): dx = dy * y. */
export const Exp: GradRule = (ctx) => {
  const dy = ctx.gradOutput(0);
  if (!dy || !ctx.needsGrad(0)) return [undefined];
  return [ctx.b.op('Mul', [dy, ctx.node.outputs[0]!])];
};
