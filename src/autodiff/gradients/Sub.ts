import { reduceToShape } from '../helpers.js';
import type { GradRule } from '../types.js';

/** y = a - b (numpy broadcasting): da = dy, db = -dy, each summed back to its shape. */
export const Sub: GradRule = (ctx) => {
  const dy = ctx.gradOutput(0);
  const { b, node, opset } = ctx;
  if (!dy) return [undefined, undefined];
  const ys = ctx.shape(node.outputs[0]!);
  const da = ctx.needsGrad(0) ? reduceToShape(b, dy, ys, ctx.shape(node.inputs[0]!), opset) : undefined;
  const db = ctx.needsGrad(1) ? b.op('Neg', [reduceToShape(b, dy, ys, ctx.shape(node.inputs[1]!), opset)]) : undefined;
  return [da, db];
};
