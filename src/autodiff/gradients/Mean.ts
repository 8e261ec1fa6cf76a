import { reduceToShape, scalar } from '../helpers.js';
import type { GradRule } from '../types.js';

/** y = (x_0 + ... + x_{n-1}) / n (variadic, broadcasting): dx_i = dy/n summed back to x_i's shape. */
export const Mean: GradRule = (ctx) => {
  const dy = ctx.gradOutput(0);
  const { b, node, opset } = ctx;
  if (!dy) return node.inputs.map(() => undefined);
  const ys = ctx.shape(node.outputs[0]!);
  const scaled = b.op('Mul', [dy, scalar(b, 1 / node.inputs.length)]);
  return node.inputs.map((v, i) => (ctx.needsGrad(i) ? reduceToShape(b, scaled, ys, ctx.shape(v), opset) : undefined));
};
