import { reduceToShape } from '../helpers.js';
import type { GradRule } from '../types.js';

/** y = a + b (numpy broadcasting): each operand gets dy summed back to its shape. */
export const Add: GradRule = (ctx) => {
  const dy = ctx.gradOutput(0);
  const { b, node, opset } = ctx;
  if (!dy) return [undefined, undefined];
  const ys = ctx.shape(node.outputs[0]!);
  return node.inputs.map((v, i) => (ctx.needsGrad(i) ? reduceToShape(b, dy, ys, ctx.shape(v), opset) : undefined));
};
