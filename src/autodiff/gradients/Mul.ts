import { reduceToShape } from '../helpers.js';
import type { GradRule } from '../types.js';

/** y = a * b (numpy broadcasting): da = dy*b, db = dy*a, each summed back to its shape. */
export const Mul: GradRule = (ctx) => {
  const dy = ctx.gradOutput(0);
  const { b, node, opset } = ctx;
  if (!dy) return [undefined, undefined];
  const [a, c] = node.inputs as [string, string];
  const ys = ctx.shape(node.outputs[0]!);
  const da = ctx.needsGrad(0) ? reduceToShape(b, b.op('Mul', [dy, c]), ys, ctx.shape(a), opset) : undefined;
  const db = ctx.needsGrad(1) ? reduceToShape(b, b.op('Mul', [dy, a]), ys, ctx.shape(c), opset) : undefined;
  return [da, db];
};
