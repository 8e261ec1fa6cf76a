import type { GradRule } from '../types.js';

/** y = 1/x: dx = -dy * y * y. */
export const Reciprocal: GradRule = (ctx) => {
  const dy = ctx.gradOutput(0);
  if (!dy || !ctx.needsGrad(0)) return [undefined];
  const { b, node } = ctx;
  const y = node.outputs[0]!;
  return [b.op('Neg', [b.op('Mul', [dy, b.op('Mul', [y, y])])])];
};
