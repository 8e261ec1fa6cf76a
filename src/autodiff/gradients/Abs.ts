import type { GradRule } from '../types.js';

/** y = |x|: dx = dy * sign(x) (0 at 0). */
export const Abs: GradRule = (ctx) => {
  const dy = ctx.gradOutput(0);
  if (!dy || !ctx.needsGrad(0)) return [undefined];
  return [ctx.b.op('Mul', [dy, ctx.b.op('Sign', [ctx.node.inputs[0]!])])];
};
