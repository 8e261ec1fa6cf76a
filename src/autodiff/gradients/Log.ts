import type { GradRule } from '../types.js';

/** y = log(x): dx = dy / x. */
export const Log: GradRule = (ctx) => {
  const dy = ctx.gradOutput(0);
  if (!dy || !ctx.needsGrad(0)) return [undefined];
  return [ctx.b.op('Div', [dy, ctx.node.inputs[0]!])];
};
