import type { GradRule } from '../types.js';

/** y = log(1 + exp(x)): dx = dy * sigmoid(x). */
export const Softplus: GradRule = (ctx) => {
  const dy = ctx.gradOutput(0);
  if (!dy || !ctx.needsGrad(0)) return [undefined];
  return [ctx.b.op('Mul', [dy, ctx.b.op('Sigmoid', [ctx.node.inputs[0]!])])];
};
