import { scalar } from '../helpers.js';
import type { GradRule } from '../types.js';

/** y = 1/(1+exp(-x)): dx = dy * y * (1 - y). */
export const Sigmoid: GradRule = (ctx) => {
  const dy = ctx.gradOutput(0);
  if (!dy || !ctx.needsGrad(0)) return [undefined];
  const { b, node } = ctx;
  const y = node.outputs[0]!;
  return [b.op('Mul', [dy, b.op('Mul', [y, b.op('Sub', [scalar(b, 1), y])])])];
};
