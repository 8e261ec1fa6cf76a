import { scalar } from '../helpers.js';
import type { GradRule } from '../types.js';

/** y = sqrt(x): dx = dy * 0.5 / y. */
export const Sqrt: GradRule = (ctx) => {
  const dy = ctx.gradOutput(0);
  if (!dy || !ctx.needsGrad(0)) return [undefined];
  const { b, node } = ctx;
  return [b.op('Div', [b.op('Mul', [dy, scalar(b, 0.5)]), node.outputs[0]!])];
};
