/** Gradient of GlobalAveragePool: dX = Expand(dY / (H·W…), shape of X). */
import type { GradRule } from '../types.js';
import { product } from '../helpers.js';

export const GlobalAveragePool: GradRule = (ctx) => {
  const { node, b } = ctx;
  const dy = ctx.gradOutput(0);
  if (!dy || !ctx.needsGrad(0)) return [undefined];
  const xs = ctx.shape(node.inputs[0]!);
  const scaled = b.op('Mul', [dy, b.constFloat([1 / product(xs.slice(2))], [], 'scalar')]);
  return [b.op('Expand', [scaled, b.constInt64(xs, [xs.length], 'shape')])];
};
