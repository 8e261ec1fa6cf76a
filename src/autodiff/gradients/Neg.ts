import type { GradRule } from '../types.js';

/** y = -x: dx = -dy. */
export const Neg: GradRule = (ctx) => {
  const dy = ctx.gradOutput(0);
  if (!dy || !ctx.needsGrad(0)) return [undefined];
  return [ctx.b.op('Neg', [dy])];
};
