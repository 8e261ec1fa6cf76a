import { reduceToShape } from '../helpers.js';
import type { GradRule } from '../types.js';

/** y = x_0 + x_1 + ... (variadic, broadcasting): dx_i = dy summed back to x_i's shape. */
export const Sum: GradRule = (ctx) => {
  const dy = ctx.gradOutput(0);
  const { b, node, opset } = ctx;
  if (!dy) return node.inputs.map(() => undefined);
  const ys = ctx.shape(node.outputs[0]!);
  return node.inputs.map((v, i) => (ctx.needsGrad(i) ? reduceToShape(b, dy, ys, ctx.shape(v), opset) : undefined));
};
