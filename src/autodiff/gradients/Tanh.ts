import { scalar } from '../helpers.js';
import type { GradRule } from '../types.js';

/** y = tanh(x): dx = dy * (1 - y^2). */
export const Tanh: GradRule = (ctx) => {
  const dy = ctx.gradOutput(0);
  if (!dy || !ctx.needsGrad(0)) return [undefined];
  const { b, node } = ctx;
  const y = node.outputs[0]!;
  return [b.op('Mul', [dy, b.op('Sub', [scalar(b, 1), b.op('Mul', [y, y])])])];
};
