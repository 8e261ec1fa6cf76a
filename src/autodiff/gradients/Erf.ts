import { scalar } from '../helpers.js';
import type { GradRule } from '../types.js';

/** y = erf(x): dx = dy * 2/sqrt(pi) * exp(-x^2). */
export const Erf: GradRule = (ctx) => {
  const dy = ctx.gradOutput(0);
  if (!dy || !ctx.needsGrad(0)) return [undefined];
  const { b, node } = ctx;
  const x = node.inputs[0]!;
  const g = b.op('Exp', [b.op('Neg', [b.op('Mul', [x, x])])]);
  return [b.op('Mul', [dy, b.op('Mul', [g, scalar(b, 2 / Math.sqrt(Math.PI))])])];
};
